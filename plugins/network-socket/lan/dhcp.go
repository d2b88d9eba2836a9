package lan

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// dhcpServer hands every guest of the cluster one fixed address, derived
// from its MAC's instance index, so a guest keeps its address across guest,
// switch and loco restarts without the switch storing anything.
type dhcpServer struct {
	serverIP  netip.Addr
	mask      net.IPMask
	leaseTime time.Duration
	mtu       int // option 26 when not zero
	leases    map[mac]netip.Addr
}

func newDHCPServer(c Config, guests []guestSpec) *dhcpServer {
	d := &dhcpServer{serverIP: c.hostIP, mask: net.CIDRMask(c.subnet.Bits(), 32), leaseTime: c.leaseTime, mtu: c.dhcpMTU,
		leases: map[mac]netip.Addr{}}
	for i, g := range guests {
		d.leases[g.mac] = c.leaseFor(i)
	}
	return d
}

// dhcpReply is an answer and where to send it.
type dhcpReply struct {
	msg   *dhcpv4.DHCPv4
	dstIP netip.Addr
	dst   mac
}

var broadcastMAC = mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// respond answers one client message, or returns nil when RFC 2131 says
// this server stays silent (not ours to answer, or nothing to say).
func (d *dhcpServer) respond(req *dhcpv4.DHCPv4) (*dhcpReply, error) {
	if req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
		return nil, nil
	}
	client := mac(req.ClientHWAddr)
	ip, ok := d.leases[client]
	if !ok {
		return nil, nil // not a guest of this cluster
	}
	var typ dhcpv4.MessageType
	yours := ip
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(d.serverIP.AsSlice())) {
			return nil, nil // the client chose another server's offer
		}
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr // renewing or rebinding
		}
		typ = dhcpv4.MessageTypeAck
		if !want.Equal(net.IP(ip.AsSlice())) {
			typ = dhcpv4.MessageTypeNak
		}
	case dhcpv4.MessageTypeInform:
		typ, yours = dhcpv4.MessageTypeAck, netip.Addr{}
	default:
		return nil, nil // release, decline: the address is the guest's anyway
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(d.serverIP.AsSlice()))),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptSubnetMask(d.mask)))
		if d.mtu > 0 {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(d.mtu >> 8), byte(d.mtu)})))
		}
		if yours.IsValid() {
			mods = append(mods, dhcpv4.WithYourIP(net.IP(yours.AsSlice())),
				dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(d.leaseTime)),
				dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(d.leaseTime/2)),
				dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(d.leaseTime*7/8)))
		}
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil, fmt.Errorf("building the DHCP %s for %s: %w", typ, client, err)
	}
	if typ == dhcpv4.MessageTypeInform {
		resp.ClientIPAddr = req.ClientIPAddr
	}
	// Where the answer goes, RFC 2131 section 4.1.
	r := &dhcpReply{msg: resp, dst: client}
	ciaddr, _ := netip.AddrFromSlice(req.ClientIPAddr.To4())
	switch {
	case typ == dhcpv4.MessageTypeNak || req.IsBroadcast():
		r.dst, r.dstIP = broadcastMAC, netip.AddrFrom4([4]byte{255, 255, 255, 255})
	case ciaddr.IsValid() && !ciaddr.IsUnspecified():
		r.dstIP = ciaddr
	default:
		r.dstIP = ip
	}
	return r, nil
}
