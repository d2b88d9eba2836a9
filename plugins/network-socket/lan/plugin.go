// Package lan is loco's LAN: an Ethernet switch that QEMU guests join over
// unix datagram sockets (-netdev dgram), with a DHCP server, a probe host
// that measures every guest's reachability, LAN status and frame capture.
// Any EtherType passes (IPv4, ARP, IPX, NetBEUI, IPv6), so games that find
// each other by broadcast, or speak IPX, work as on a real LAN.
//
// Plugin is the network-socket plugin; Segment is one configured LAN, for
// plugins that build on the same switch (see Segment.AddUplink).
package lan

import (
	"context"
	"fmt"
	"sync"

	"github.com/locolan/loco/sdk"
)

// Plugin is the network plugin "socket".
type Plugin struct {
	version string

	mu  sync.Mutex
	seg *Segment
}

var (
	_ sdk.Network        = (*Plugin)(nil)
	_ sdk.NetworkCapture = (*Plugin)(nil)
)

// New returns the plugin; version is what Info reports.
func New(version string) *Plugin { return &Plugin{version: version} }

func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "socket", Kind: sdk.KindNetwork, Version: p.version,
		Capabilities: []string{"capture", "dhcp", "probe"}}
}

func (p *Plugin) ConfigSchema() sdk.Schema { return Schema() }

// Configure builds the segment; configured again with the same block and
// cluster (after a restart of loco's plugin host, or a repeated call) it
// keeps the running one.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	c, err := DecodeConfig(cfg, len(cluster.Instances))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg != nil && p.seg.Same(c, cluster) {
		return nil
	}
	seg, err := NewSegment(sdk.Logger().Named("lan"), c, cluster)
	if err != nil {
		return err
	}
	if p.seg != nil {
		p.seg.Close()
	}
	p.seg = seg
	return nil
}

func (p *Plugin) current() (*Segment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg == nil {
		return nil, fmt.Errorf("the network plugin is not configured yet: %w", sdk.ErrNotReady)
	}
	return p.seg, nil
}

func (p *Plugin) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	seg, err := p.current()
	if err != nil {
		return nil, err
	}
	return seg.Attach(int(in.Index))
}

func (p *Plugin) Status(context.Context) (sdk.LANStatus, error) {
	seg, err := p.current()
	if err != nil {
		return sdk.LANStatus{}, err
	}
	return seg.Status(), nil
}

// Capture streams the frames entering the segment.
func (p *Plugin) Capture(ctx context.Context, req sdk.CaptureRequest, send func(sdk.CapturedFrame) error) error {
	seg, err := p.current()
	if err != nil {
		return err
	}
	return seg.Capture(ctx, req, send)
}
