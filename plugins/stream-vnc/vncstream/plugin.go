// Package vncstream is the stream plugin "vnc": each guest's own QEMU VNC
// display (the unix socket the core gives every guest) as an RFB endpoint.
// The core proxies a browser's WebSocket to that socket behind the API's
// token and noVNC draws it; QEMU encodes, so the plugin moves no pixels and
// costs the host next to nothing. It serves no WHEP and no sound.
package vncstream

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/locolan/loco/sdk"
)

// Plugin is the stream plugin "vnc"; New makes one.
type Plugin struct {
	mu     sync.Mutex
	guests map[uint32]sdk.Instance
}

var (
	_ sdk.Stream          = (*Plugin)(nil)
	_ sdk.StreamEndpoints = (*Plugin)(nil)
)

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "vnc", Kind: sdk.KindStream, Version: "1.0.0", Capabilities: []string{sdk.ProtocolRFB}}
}

// ConfigSchema: stream "vnc" {} takes nothing; QEMU's VNC server is the
// core's, on a unix socket per guest.
func (p *Plugin) ConfigSchema() sdk.Schema { return sdk.Schema{} }

func (p *Plugin) Configure(_ context.Context, _ sdk.Config, cluster sdk.Cluster) error {
	guests := map[uint32]sdk.Instance{}
	for _, in := range cluster.Instances {
		if !strings.HasPrefix(in.VNC, "unix:") {
			return fmt.Errorf("guest %s's VNC display is %q, not a unix socket: the core proxies only a socket in the guest's directory", in.Name, in.VNC)
		}
		guests[in.Index] = in
	}
	p.mu.Lock()
	p.guests = guests
	p.mu.Unlock()
	sdk.Logger().Info("configured", "guests", len(guests))
	return nil
}

// Attach adds nothing: the core already starts every guest with its VNC
// display on a unix socket, which is all this plugin serves. Without an
// audiodev from a stream plugin the guest's sound card plays into the
// core's silent backend (RFB carries no sound).
func (p *Plugin) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	if _, err := p.guest(in.Index); err != nil {
		return nil, err
	}
	return nil, nil
}

func (p *Plugin) guest(i uint32) (sdk.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.guests == nil {
		return sdk.Instance{}, fmt.Errorf("the vnc plugin is not configured yet: %w", sdk.ErrNotReady)
	}
	in, ok := p.guests[i]
	if !ok {
		return sdk.Instance{}, fmt.Errorf("instance %d: %w", i, sdk.ErrNoInstance)
	}
	return in, nil
}

// Endpoints: the guest's VNC socket, healthy when QEMU answers on it with
// an RFB version.
func (p *Plugin) Endpoints(ctx context.Context, instance uint32) ([]sdk.Endpoint, error) {
	in, err := p.guest(instance)
	if err != nil {
		return nil, err
	}
	ep := sdk.Endpoint{Protocol: sdk.ProtocolRFB, Dial: in.VNC}
	if v, err := probe(ctx, strings.TrimPrefix(in.VNC, "unix:")); err != nil {
		ep.Status = err.Error()
	} else {
		ep.Healthy, ep.Status = true, "QEMU VNC, "+v
	}
	return []sdk.Endpoint{ep}, nil
}

// probe reads the RFB server's version line and hangs up before the
// handshake goes further, which QEMU takes as a client that went away.
func probe(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("the guest's display is not up: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the RFB version from %s: %w", path, err)
	}
	if !strings.HasPrefix(line, "RFB ") {
		return "", fmt.Errorf("%s does not speak RFB (it said %.20q)", path, line)
	}
	return strings.TrimSpace(line), nil
}

func (p *Plugin) Offer(context.Context, sdk.OfferRequest) (string, string, error) {
	return "", "", fmt.Errorf("stream \"vnc\" serves RFB, not WebRTC: %w", sdk.ErrNoWHEP)
}

func (p *Plugin) Hangup(context.Context, string) error {
	return fmt.Errorf("stream \"vnc\" has no WHEP sessions: %w", sdk.ErrNoWHEP)
}

// Stats: QEMU encodes each viewer's updates itself and tells nobody how
// many; the browser's player counts what it draws (the dashboard shows it).
func (p *Plugin) Stats(context.Context) ([]sdk.StreamStats, error) {
	return nil, fmt.Errorf("stream \"vnc\" runs no encoder of its own (QEMU encodes per viewer): %w", sdk.ErrUnsupported)
}
