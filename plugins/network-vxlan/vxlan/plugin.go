// Package vxlan is loco's LAN across hosts: package lan's segment (switch,
// DHCP, prober, capture) with one more port, a user-space VXLAN tunnel
// endpoint (RFC 7348) that carries the segment's frames over UDP to the
// other hosts' segments. Unicast to a MAC learned behind a peer goes to
// that peer alone; broadcast, multicast and unknown unicast are replicated
// to every peer. Only configured peers are heard.
package vxlan

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/locolan/loco/plugins/network-socket/lan"
	"github.com/locolan/loco/sdk"
)

// Plugin is the network plugin "vxlan".
type Plugin struct {
	version string

	mu  sync.Mutex
	cfg Config
	cl  sdk.Cluster
	seg *lan.Segment
	tun *Tunnel
}

var (
	_ sdk.Network        = (*Plugin)(nil)
	_ sdk.NetworkCapture = (*Plugin)(nil)
)

// New returns the plugin; version is what Info reports.
func New(version string) *Plugin { return &Plugin{version: version} }

func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "vxlan", Kind: sdk.KindNetwork, Version: p.version,
		Capabilities: []string{"capture", "dhcp", "probe", "vxlan"}}
}

func (p *Plugin) ConfigSchema() sdk.Schema { return Schema() }

// Configure builds the segment and its tunnel; the same block and cluster
// again keeps the running ones.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	c, err := DecodeConfig(cfg, len(cluster.Instances))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg != nil && p.cfg.equal(c) && p.seg.Same(c.LAN, cluster) {
		return nil
	}
	log := sdk.Logger().Named("vxlan")
	seg, err := lan.NewSegment(log.Named("lan"), c.LAN, cluster)
	if err != nil {
		return err
	}
	if p.tun != nil {
		p.tun.Close() // frees the UDP port for the new one
		p.seg.Close()
		p.tun, p.seg = nil, nil
	}
	var macs []string
	for _, in := range cluster.Instances {
		macs = append(macs, in.MAC)
	}
	tun, err := NewTunnel(log, TunnelConfig{VNI: c.VNI, Listen: c.Listen, Peers: c.Peers, UnderlayMTU: c.UnderlayMTU,
		Ageing: c.PeerAgeing, Heartbeat: heartbeatEvery, LocalMACs: macs}, seg.AddUplink("vxlan"))
	if err != nil {
		seg.Close()
		return err
	}
	p.cfg, p.cl, p.seg, p.tun = c, cluster, seg, tun
	return nil
}

func (p *Plugin) current() (*lan.Segment, *Tunnel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg == nil {
		return nil, nil, fmt.Errorf("the network plugin is not configured yet: %w", sdk.ErrNotReady)
	}
	return p.seg, p.tun, nil
}

func (p *Plugin) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	seg, _, err := p.current()
	if err != nil {
		return nil, err
	}
	return seg.Attach(int(in.Index))
}

// Status is the segment's status with the peers as uplinks, their drops
// beside the switch's, and an unreachable peer making the LAN unhealthy.
func (p *Plugin) Status(context.Context) (sdk.LANStatus, error) {
	seg, tun, err := p.current()
	if err != nil {
		return sdk.LANStatus{}, err
	}
	return mergeStatus(seg.Status(), tun, time.Now()), nil
}

func mergeStatus(st sdk.LANStatus, tun *Tunnel, now time.Time) sdk.LANStatus {
	ups, drops := tun.Status(now)
	st.Uplinks = ups
	if st.Drops == nil && len(drops) > 0 {
		st.Drops = map[string]uint64{}
	}
	for k, v := range drops {
		st.Drops[k] = v
	}
	reachable := 0
	for _, u := range ups {
		if u.Reachable {
			reachable++
		}
	}
	st.Summary += fmt.Sprintf("; %d/%d VXLAN peers reachable", reachable, len(ups))
	st.Healthy = st.Healthy && reachable == len(ups)
	return st
}

// Capture streams the frames entering the segment, the tunnel's marked
// FromHost.
func (p *Plugin) Capture(ctx context.Context, req sdk.CaptureRequest, send func(sdk.CapturedFrame) error) error {
	seg, _, err := p.current()
	if err != nil {
		return err
	}
	return seg.Capture(ctx, req, send)
}

var _ sdk.Metrics = (*Plugin)(nil)

// Metrics is the segment's series plus the peers as uplinks.
func (p *Plugin) Metrics(context.Context) ([]sdk.MetricFamily, error) {
	seg, tun, err := p.current()
	if err != nil {
		return nil, err
	}
	return seg.MetricsFrom(mergeStatus(seg.Status(), tun, time.Now())), nil
}
