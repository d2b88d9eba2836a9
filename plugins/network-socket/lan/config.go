package lan

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

// Defaults. The subnet is private and unlikely to be the host's own; the
// segment is isolated from the host's network anyway.
const (
	defaultSubnet        = "10.87.0.0/24"
	defaultFirstLease    = 10
	defaultLeaseTime     = "1h"
	defaultProbeInterval = "1s"
	defaultAgeing        = "5m" // 802.1D's default ageing time
	defaultQueueFrames   = 512
)

// Schema is the plugin block: network "socket" { subnet = ... }.
func Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		sdk.Optional("subnet", cty.String, cty.StringVal(defaultSubnet),
			"IPv4 subnet of the LAN (CIDR): DHCP leases and the switch's own address come from it"),
		sdk.Optional("dhcp", cty.Bool, cty.True,
			"serve DHCP: guest N gets the subnet's address number first_lease+N; false for guests with static addresses"),
		sdk.Optional("first_lease", cty.Number, cty.NumberIntVal(defaultFirstLease),
			"host number in the subnet of guest 0's lease"),
		sdk.Optional("host_ip", cty.String, cty.StringVal(""),
			"the switch's own address (DHCP server, prober); default: the subnet's first host address"),
		sdk.Optional("lease_time", cty.String, cty.StringVal(defaultLeaseTime), "DHCP lease time"),
		sdk.Optional("probe_interval", cty.String, cty.StringVal(defaultProbeInterval),
			"how often the switch ARPs and pings every guest; a guest is unreachable after 3 missed intervals"),
		sdk.Optional("mac_ageing", cty.String, cty.StringVal(defaultAgeing),
			"how long the switch remembers where a MAC address is"),
		sdk.Optional("queue_frames", cty.Number, cty.NumberIntVal(defaultQueueFrames),
			"frames queued per guest before the switch drops for it"),
	}}
}

// RawConfig is the block as decoded, before ParseConfig checks it.
type RawConfig struct {
	Subnet        string `cty:"subnet"`
	DHCP          bool   `cty:"dhcp"`
	FirstLease    int    `cty:"first_lease"`
	HostIP        string `cty:"host_ip"`
	LeaseTime     string `cty:"lease_time"`
	ProbeInterval string `cty:"probe_interval"`
	MACAgeing     string `cty:"mac_ageing"`
	QueueFrames   int    `cty:"queue_frames"`
}

// Config is the validated configuration. It is comparable, so a repeated
// Configure can tell whether anything changed.
type Config struct {
	subnet        netip.Prefix
	dhcp          bool
	firstLease    int
	hostIP        netip.Addr
	leaseTime     time.Duration
	probeInterval time.Duration
	ageing        time.Duration
	queueFrames   int
	// dhcpMTU, when not zero, is offered as DHCP option 26 (interface
	// MTU). The socket plugin never sets it; a plugin that carries the
	// segment over a tunnel with less room does (WithDHCPMTU).
	dhcpMTU int
}

// WithDHCPMTU returns c with its DHCP server offering interface MTU mtu
// (option 26) to every guest; 0 offers none.
func (c Config) WithDHCPMTU(mtu int) Config {
	c.dhcpMTU = mtu
	return c
}

// HostIP is the address of the segment's own station.
func (c Config) HostIP() netip.Addr { return c.hostIP }

// DecodeConfig decodes and checks the plugin block for a cluster of n
// guests; an absent block gets the defaults.
func DecodeConfig(cfg sdk.Config, n int) (Config, error) {
	var raw RawConfig
	if err := cfg.Decode(&raw); err != nil {
		return Config{}, err
	}
	if cfg.Value.IsNull() {
		raw = RawConfig{Subnet: defaultSubnet, DHCP: true, FirstLease: defaultFirstLease, LeaseTime: defaultLeaseTime,
			ProbeInterval: defaultProbeInterval, MACAgeing: defaultAgeing, QueueFrames: defaultQueueFrames}
	}
	return ParseConfig(raw, n)
}

// ParseConfig checks the block against a cluster of n guests; every problem
// names its attribute.
func ParseConfig(r RawConfig, n int) (Config, error) {
	var errs []error
	bad := func(attr, summary, detail string, args ...any) {
		errs = append(errs, &sdk.AttrError{Path: []string{attr}, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	c := Config{dhcp: r.DHCP, firstLease: r.FirstLease, queueFrames: r.QueueFrames}
	dur := func(attr, s string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			bad(attr, "Not a duration", "%q: write e.g. \"1s\", \"5m\", \"1h\"", s)
			return 0
		}
		if d < min {
			bad(attr, "Too short", "%s: at least %s", s, min)
		}
		return d
	}
	c.leaseTime = dur("lease_time", r.LeaseTime, time.Minute)
	c.probeInterval = dur("probe_interval", r.ProbeInterval, 100*time.Millisecond)
	c.ageing = dur("mac_ageing", r.MACAgeing, 10*time.Second)
	if r.QueueFrames < 16 || r.QueueFrames > 1<<16 {
		bad("queue_frames", "Out of range", "%d: use 16-65536", r.QueueFrames)
	}

	p, err := netip.ParsePrefix(r.Subnet)
	switch {
	case err != nil:
		bad("subnet", "Not a subnet", "%q: write an IPv4 subnet in CIDR form, e.g. %q", r.Subnet, defaultSubnet)
		return c, errors.Join(errs...)
	case !p.Addr().Is4():
		bad("subnet", "Not IPv4", "%q: the LAN's DHCP and probes speak IPv4", r.Subnet)
		return c, errors.Join(errs...)
	case p.Bits() > 30:
		bad("subnet", "Subnet too small", "%q: use /30 or larger", r.Subnet)
		return c, errors.Join(errs...)
	case p.Masked() != p:
		bad("subnet", "Host bits set", "%q: did you mean %q?", r.Subnet, p.Masked().String())
		return c, errors.Join(errs...)
	}
	c.subnet = p
	hosts := 1<<(32-p.Bits()) - 2 // without network and broadcast
	if r.DHCP && (r.FirstLease < 1 || r.FirstLease+n-1 > hosts) {
		bad("first_lease", "Leases do not fit the subnet",
			"guests get host numbers %d..%d, but %s has hosts 1..%d", r.FirstLease, r.FirstLease+n-1, r.Subnet, hosts)
	}
	if r.HostIP == "" {
		c.hostIP = p.Addr().Next()
		if r.DHCP && r.FirstLease <= 1 && r.FirstLease+n-1 >= 1 {
			bad("first_lease", "Leases overlap the switch's address",
				"the switch takes %s (host 1) by default: start leases at 2 or more, or set host_ip", c.hostIP)
		}
	} else {
		a, err := netip.ParseAddr(r.HostIP)
		switch {
		case err != nil || !a.Is4():
			bad("host_ip", "Not an IPv4 address", "%q", r.HostIP)
		case !p.Contains(a) || a == p.Addr() || a == lastAddr(p):
			bad("host_ip", "Not a host of the subnet", "%s is not a host address of %s", a, p)
		default:
			c.hostIP = a
			if h := hostNumber(p, a); r.DHCP && h >= r.FirstLease && h <= r.FirstLease+n-1 {
				bad("host_ip", "Address is leased to a guest", "%s is guest %d's DHCP lease", a, h-r.FirstLease)
			}
		}
	}
	return c, errors.Join(errs...)
}

// leaseFor is guest i's address.
func (c Config) leaseFor(i int) netip.Addr {
	return addHost(c.subnet, c.firstLease+i)
}

func addHost(p netip.Prefix, n int) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func hostNumber(p netip.Prefix, a netip.Addr) int {
	x, y := p.Addr().As4(), a.As4()
	return int((uint32(y[0])<<24 | uint32(y[1])<<16 | uint32(y[2])<<8 | uint32(y[3])) -
		(uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])))
}

func lastAddr(p netip.Prefix) netip.Addr { return addHost(p, 1<<(32-p.Bits())-1) }
