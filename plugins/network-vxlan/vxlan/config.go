package vxlan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/plugins/network-socket/lan"
	"github.com/locolan/loco/sdk"
)

const (
	defaultVNI         = 4242
	defaultListen      = "127.0.0.1:4789" // loopback unless configured: VXLAN has no authentication
	defaultUnderlayMTU = 1500
	defaultPeerAgeing  = "5m"
	heartbeatEvery     = time.Second
)

// vxlanAttrs are this plugin's own; the rest of the block is lan's.
var vxlanAttrs = []sdk.Attribute{
	sdk.Optional("vni", cty.Number, cty.NumberIntVal(defaultVNI), "VXLAN network identifier (24 bits): every host of the segment uses the same"),
	sdk.Optional("listen", cty.String, cty.StringVal(defaultListen), "UDP address of this host's VTEP (ip:port)"),
	sdk.Optional("peers", cty.List(cty.String), cty.ListValEmpty(cty.String),
		"the other hosts' VTEPs (host:port); datagrams from any other address are dropped"),
	sdk.Optional("underlay_mtu", cty.Number, cty.NumberIntVal(defaultUnderlayMTU),
		"MTU of the network between the hosts: frames that would not fit with VXLAN's 50 bytes are dropped and counted; DHCP offers guests underlay_mtu-50"),
	sdk.Optional("peer_mac_ageing", cty.String, cty.StringVal(defaultPeerAgeing), "how long a MAC learned behind a peer is remembered"),
}

// Schema is lan's block plus the tunnel's attributes.
func Schema() sdk.Schema {
	s := lan.Schema()
	s.Attributes = append(slices.Clone(s.Attributes), vxlanAttrs...)
	return s
}

// Config is the validated block.
type Config struct {
	LAN         lan.Config
	VNI         uint32
	Listen      netip.AddrPort
	Peers       []netip.AddrPort
	UnderlayMTU int
	PeerAgeing  time.Duration
}

func (c Config) equal(o Config) bool {
	return c.LAN == o.LAN && c.VNI == o.VNI && c.Listen == o.Listen && slices.Equal(c.Peers, o.Peers) &&
		c.UnderlayMTU == o.UnderlayMTU && c.PeerAgeing == o.PeerAgeing
}

// DecodeConfig splits the block into lan's part and the tunnel's and
// checks both for a cluster of n guests.
func DecodeConfig(cfg sdk.Config, n int) (Config, error) {
	lanVals := map[string]cty.Value{}
	get := func(name string) cty.Value {
		if cfg.Value.IsNull() {
			for _, a := range vxlanAttrs {
				if a.Name == name {
					return a.Default
				}
			}
		}
		return cfg.Value.GetAttr(name)
	}
	var lanCfg sdk.Config
	if cfg.Value.IsNull() {
		lanCfg = sdk.Config{Value: cty.NullVal(lan.Schema().ImpliedType())}
	} else {
		for _, a := range lan.Schema().Attributes {
			lanVals[a.Name] = cfg.Value.GetAttr(a.Name)
		}
		lanCfg = sdk.Config{Value: cty.ObjectVal(lanVals)}
	}
	lc, lanErr := lan.DecodeConfig(lanCfg, n)

	var errs []error
	if lanErr != nil {
		errs = append(errs, lanErr)
	}
	bad := func(attr, summary, detail string, args ...any) {
		errs = append(errs, &sdk.AttrError{Path: []string{attr}, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	c := Config{}
	vni, _ := get("vni").AsBigFloat().Int64()
	if vni < 1 || vni > maxVNI || !get("vni").AsBigFloat().IsInt() {
		bad("vni", "Out of range", "%s: a VNI is 1-%d", get("vni").AsBigFloat().String(), maxVNI)
	}
	c.VNI = uint32(vni)
	listen := get("listen").AsString()
	if a, err := resolve(listen); err != nil {
		bad("listen", "Not an address", "%q: %v (write ip:port, e.g. %q)", listen, err, defaultListen)
	} else {
		c.Listen = a
	}
	seen := map[netip.Addr]string{}
	for _, v := range get("peers").AsValueSlice() {
		s := v.AsString()
		a, err := resolve(s)
		if err != nil {
			bad("peers", "Not an address", "%q: %v (write host:port, e.g. \"10.0.0.2:4789\")", s, err)
			continue
		}
		// Peers are told apart by source IP (VTEPs choose source ports
		// per flow), so two on one IP would be one peer.
		if o, dup := seen[a.Addr()]; dup {
			bad("peers", "Two peers on one IP", "%q and %q: peers are recognised by IP address, so each needs its own", o, s)
			continue
		}
		if a == c.Listen || (a.Addr() == c.Listen.Addr() && c.Listen.IsValid()) {
			bad("peers", "Peer is this host", "%q is the listen address's IP", s)
			continue
		}
		seen[a.Addr()] = s
		c.Peers = append(c.Peers, a)
	}
	mtu, _ := get("underlay_mtu").AsBigFloat().Int64()
	if mtu < 576+overhead+ethHeaderLen || mtu > 65535 {
		bad("underlay_mtu", "Out of range", "%d: use %d-65535", mtu, 576+overhead+ethHeaderLen)
	}
	c.UnderlayMTU = int(mtu)
	if d, err := time.ParseDuration(get("peer_mac_ageing").AsString()); err != nil || d < 10*time.Second {
		bad("peer_mac_ageing", "Not a duration of 10s or more", "%q", get("peer_mac_ageing").AsString())
	} else {
		c.PeerAgeing = d
	}
	if len(c.Peers) > 0 && !cfg.Value.IsNull() && cfg.Value.GetAttr("host_ip").AsString() == "" {
		// Every host has a station (DHCP server, prober); on one segment
		// they need distinct addresses, and the default is the same on all.
		bad("host_ip", "Each host needs its own station address", "with peers, set host_ip to an address no other host uses (and give each host its own first_lease range)")
	}
	// The inner IP MTU: what fits in the underlay after 50 bytes.
	c.LAN = lc.WithDHCPMTU(min(c.UnderlayMTU-overhead-ethHeaderLen, 1500))
	return c, errors.Join(errs...)
}

// resolve turns host:port into an address, looking the host up once.
func resolve(s string) (netip.AddrPort, error) {
	host, portS, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("port %q is not 1-65535", portS)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolving %s: %w", host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}
