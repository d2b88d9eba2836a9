// Command loco-plugin-network-socket is loco's LAN: an Ethernet switch that
// QEMU guests join over unix datagram sockets (-netdev dgram), with a DHCP
// server, a probe host that measures every guest's reachability, LAN status
// and frame capture. Any EtherType passes (IPv4, ARP, IPX, NetBEUI, IPv6),
// so games that find each other by broadcast, or speak IPX, work as on a
// real LAN.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/locolan/loco/sdk"
)

var version = "1.0.0"

type plugin struct {
	mu  sync.Mutex
	seg *segment
}

func (p *plugin) Info() sdk.Info {
	return sdk.Info{Name: "socket", Kind: sdk.KindNetwork, Version: version,
		Capabilities: []string{"capture", "dhcp", "probe"}}
}

func (p *plugin) ConfigSchema() sdk.Schema { return schema() }

// Configure builds the segment; configured again with the same block and
// cluster (after a restart of loco's plugin host, or a repeated call) it
// keeps the running one.
func (p *plugin) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	var raw rawConfig
	if err := cfg.Decode(&raw); err != nil {
		return err
	}
	if cfg.Value.IsNull() {
		raw = rawConfig{Subnet: defaultSubnet, DHCP: true, FirstLease: defaultFirstLease, LeaseTime: defaultLeaseTime,
			ProbeInterval: defaultProbeInterval, MACAgeing: defaultAgeing, QueueFrames: defaultQueueFrames}
	}
	c, err := parseConfig(raw, len(cluster.Instances))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg != nil && p.seg.same(c, cluster) {
		return nil
	}
	seg, err := newSegment(sdk.Logger().Named("lan"), c, cluster)
	if err != nil {
		return err
	}
	if p.seg != nil {
		p.seg.close()
	}
	p.seg = seg
	return nil
}

func (p *plugin) segment() (*segment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seg == nil {
		return nil, status.Error(codes.FailedPrecondition, "the network plugin is not configured yet")
	}
	return p.seg, nil
}

func (p *plugin) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	seg, err := p.segment()
	if err != nil {
		return nil, err
	}
	return seg.attach(int(in.Index))
}

func (p *plugin) Status(context.Context) (sdk.LANStatus, error) {
	seg, err := p.segment()
	if err != nil {
		return sdk.LANStatus{}, err
	}
	return seg.status(), nil
}

// Capture streams the frames entering the segment.
func (p *plugin) Capture(ctx context.Context, req sdk.CaptureRequest, send func(sdk.CapturedFrame) error) error {
	seg, err := p.segment()
	if err != nil {
		return err
	}
	for _, i := range req.Instances {
		if int(i) >= len(seg.sw.ports) {
			return status.Errorf(codes.InvalidArgument, "no instance %d: the cluster has %d", i, len(seg.sw.ports))
		}
	}
	t, stop := seg.sw.subscribe(req)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-seg.ctx.Done():
			return errors.New("the LAN was reconfigured; capture again")
		case f := <-t.ch:
			if err := send(f); err != nil {
				return fmt.Errorf("sending a captured frame: %w", err)
			}
		}
	}
}

func main() { sdk.Serve(&plugin{}) }
