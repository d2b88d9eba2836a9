package lan

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dhcpFrame wraps a client message the way a client without an address
// sends it: 0.0.0.0:68 to 255.255.255.255:67, Ethernet broadcast.
func dhcpFrame(t testing.TB, src mac, m *dhcpv4.DHCPv4) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4zero, DstIP: net.IPv4bcast}
	udp := &layers.UDP{SrcPort: 68, DstPort: 67}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: src[:], DstMAC: broadcastMAC[:], EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(m.ToBytes()))
}

// dhcpReplyTo waits for the server's answer to xid; nil if none comes.
func dhcpReplyTo(g *testGuest, xid dhcpv4.TransactionID, timeout time.Duration) (*dhcpv4.DHCPv4, *layers.Ethernet, *layers.IPv4) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f := g.recv(time.Until(deadline), mac{})
		if f == nil {
			return nil, nil, nil
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok || udp.SrcPort != 67 {
			continue
		}
		m, err := dhcpv4.FromBytes(udp.Payload)
		if err != nil || m.TransactionID != xid {
			continue
		}
		return m, pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet), pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	}
	return nil, nil, nil
}

// TestDHCPGivesEveryGuestItsOwnStableAddress walks discover, offer, request
// and ack for every guest, and the cases where the server must say no or
// stay silent.
func TestDHCPGivesEveryGuestItsOwnStableAddress(t *testing.T) {
	seg, g := startLAN(t, 3, defaultRaw())
	server := net.IPv4(10, 87, 0, 1)
	for i, guest := range g {
		want := net.IPv4(10, 87, 0, byte(10+i))
		disc, err := dhcpv4.NewDiscovery(net.HardwareAddr(guest.mac[:]))
		if err != nil {
			t.Fatal(err)
		}
		guest.send(dhcpFrame(t, guest.mac, disc))
		offer, eth, ip := dhcpReplyTo(guest, disc.TransactionID, 5*time.Second)
		if offer == nil {
			t.Fatalf("guest %d: no offer", i)
		}
		if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(want) ||
			!offer.ServerIdentifier().Equal(server) || offer.IPAddressLeaseTime(0) != time.Hour ||
			net.IP(offer.SubnetMask()).String() != "255.255.255.0" {
			t.Fatalf("guest %d offer: %s", i, offer.Summary())
		}
		// Without the broadcast flag (what Windows and busybox send) the
		// offer goes to the client's MAC and offered address.
		if mac(eth.DstMAC) != guest.mac || !ip.DstIP.Equal(want) || !ip.SrcIP.Equal(server) {
			t.Errorf("guest %d offer sent to %s/%s from %s", i, eth.DstMAC, ip.DstIP, ip.SrcIP)
		}
		req, err := dhcpv4.NewRequestFromOffer(offer)
		if err != nil {
			t.Fatal(err)
		}
		guest.send(dhcpFrame(t, guest.mac, req))
		ack, _, _ := dhcpReplyTo(guest, req.TransactionID, 5*time.Second)
		if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(want) {
			t.Fatalf("guest %d: want an ACK for %s, got %v", i, want, ack)
		}
		waitFor(t, "the lease in the status", 5*time.Second, func() bool {
			ips := seg.Status().Ports[i].IPs
			return len(ips) > 0 && ips[0] == want.String()
		})
	}

	cases := []struct {
		name  string
		from  mac
		mods  []dhcpv4.Modifier
		typ   dhcpv4.MessageType
		reply dhcpv4.MessageType // 0: silence
	}{
		{"request for another address", g[0].mac, []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 87, 0, 99)))},
			dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeNak},
		{"init-reboot with the right address", g[1].mac, []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 87, 0, 11)))},
			dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeAck},
		{"renewal by ciaddr", g[2].mac, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 87, 0, 12))},
			dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeAck},
		{"request to another server", g[0].mac, []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 87, 0, 2))),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 87, 0, 10)))}, dhcpv4.MessageTypeRequest, 0},
		{"release", g[0].mac, nil, dhcpv4.MessageTypeRelease, 0},
		{"unknown MAC", mac{0x52, 0xaa, 0xbb, 0, 0, 0x42}, nil, dhcpv4.MessageTypeDiscover, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(net.HardwareAddr(tc.from[:])),
				dhcpv4.WithMessageType(tc.typ), dhcpv4.WithBroadcast(true)}, tc.mods...)...)
			if err != nil {
				t.Fatal(err)
			}
			g[0].send(dhcpFrame(t, tc.from, m))
			r, _, _ := dhcpReplyTo(g[1], m.TransactionID, time.Second) // replies are broadcast: any guest sees them
			switch {
			case tc.reply == 0 && r != nil:
				t.Errorf("want silence, got %s", r.MessageType())
			case tc.reply != 0 && (r == nil || r.MessageType() != tc.reply):
				t.Errorf("want %s, got %v", tc.reply, r)
			}
		})
	}
}

func TestDHCPOffServesNothing(t *testing.T) {
	raw := defaultRaw()
	raw.DHCP = false
	seg, g := startLAN(t, 2, raw)
	disc, _ := dhcpv4.NewDiscovery(net.HardwareAddr(g[0].mac[:]))
	g[0].send(dhcpFrame(t, g[0].mac, disc))
	if r, _, _ := dhcpReplyTo(g[0], disc.TransactionID, time.Second); r != nil {
		t.Fatalf("DHCP is off but the switch answered: %s", r.Summary())
	}
	if seg.Status().Subnet != "" {
		t.Errorf("status names a DHCP subnet with DHCP off")
	}
}

// respond makes a test guest behave like a guest's IP stack: answer ARP and
// ICMP echo for ip, until ctx ends.
func respond(ctx context.Context, g *testGuest, ip netip.Addr) {
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		g.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := g.conn.Read(buf)
		if err != nil {
			continue
		}
		pkt := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if eth == nil {
			continue
		}
		me := g.mac[:]
		if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok && arp.Operation == layers.ARPRequest && netip.AddrFrom4([4]byte(arp.DstProtAddress)) == ip {
			g.trySend(serializeNoT(&layers.Ethernet{SrcMAC: me, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeARP},
				&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
					Operation: layers.ARPReply, SourceHwAddress: me, SourceProtAddress: ip.AsSlice(),
					DstHwAddress: arp.SourceHwAddress, DstProtAddress: arp.SourceProtAddress}))
			continue
		}
		ip4, ok1 := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		icmp, ok2 := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ok1 && ok2 && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
			g.trySend(serializeNoT(&layers.Ethernet{SrcMAC: me, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ip.AsSlice(), DstIP: ip4.SrcIP},
				&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: icmp.Id, Seq: icmp.Seq},
				gopacket.Payload(icmp.Payload)))
		}
	}
}

func serializeNoT(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...)
	return buf.Bytes()
}

// TestProbesMeasureReachabilityAndRTT: a guest that answers ARP and ping is
// reachable with an RTT; when it falls silent it turns unreachable within
// three probe intervals and the LAN is unhealthy.
func TestProbesMeasureReachabilityAndRTT(t *testing.T) {
	raw := defaultRaw()
	raw.DHCP = false
	raw.ProbeInterval = "100ms"
	seg, g := startLAN(t, 2, raw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := []netip.Addr{netip.MustParseAddr("10.87.0.50"), netip.MustParseAddr("10.87.0.51")}
	var stops []context.CancelFunc
	for i := range g {
		// A gratuitous ARP: how Windows 98 with a static address says hello.
		g[i].send(serialize(t, &layers.Ethernet{SrcMAC: g[i].mac[:], DstMAC: broadcastMAC[:], EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPRequest, SourceHwAddress: g[i].mac[:], SourceProtAddress: addrs[i].AsSlice(),
				DstHwAddress: make([]byte, 6), DstProtAddress: addrs[i].AsSlice()}))
		c, stop := context.WithCancel(ctx)
		stops = append(stops, stop)
		go respond(c, g[i], addrs[i])
	}
	waitFor(t, "both guests reachable", 10*time.Second, func() bool {
		st := seg.Status()
		return st.Healthy && st.Ports[0].Reachable && st.Ports[1].Reachable && st.Ports[0].RTTMillis > 0
	})
	st := seg.Status()
	if st.Ports[0].IPs[0] != "10.87.0.50" || st.Summary != "2/2 guests reachable" {
		t.Errorf("status: %+v", st)
	}
	stops[1]()
	silent := time.Now()
	waitFor(t, "guest 1 unreachable", 5*time.Second, func() bool { return !seg.Status().Ports[1].Reachable })
	// About 3 probe intervals (300 ms); the ceiling is generous for two
	// busy cores, the figure is logged.
	d := time.Since(silent)
	t.Logf("guest 1's silence noticed after %s (about 300 ms expected)", d)
	if d > 3*time.Second {
		t.Errorf("took %s to notice, want about 3 probe intervals (300ms)", d)
	}
	st = seg.Status()
	if st.Healthy || !st.Ports[0].Reachable {
		t.Errorf("after guest 1 fell silent: %+v", st)
	}
}

// TestStationAnswersARPAndPing: a guest can check the LAN with ping alone.
func TestStationAnswersARPAndPing(t *testing.T) {
	seg, g := startLAN(t, 1, defaultRaw())
	me := netip.MustParseAddr("10.87.0.10")
	g[0].send(serialize(t, &layers.Ethernet{SrcMAC: g[0].mac[:], DstMAC: broadcastMAC[:], EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: g[0].mac[:], SourceProtAddress: me.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 87, 0, 1}}))
	var gotARP, gotEcho bool
	deadline := time.Now().Add(5 * time.Second)
	sentPing := false
	for time.Now().Before(deadline) && !(gotARP && gotEcho) {
		f := g[0].recv(time.Second, mac{})
		if f == nil {
			continue
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok && arp.Operation == layers.ARPReply {
			gotARP = mac(arp.SourceHwAddress) == seg.sw.stationMAC
			if !sentPing {
				sentPing = true
				g[0].send(serialize(t, &layers.Ethernet{SrcMAC: g[0].mac[:], DstMAC: seg.sw.stationMAC[:], EthernetType: layers.EthernetTypeIPv4},
					&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: me.AsSlice(), DstIP: net.IPv4(10, 87, 0, 1)},
					&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1},
					gopacket.Payload([]byte("hello"))))
			}
		}
		if icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoReply && icmp.Id == 7 {
			gotEcho = string(icmp.Payload) == "hello"
		}
	}
	if !gotARP || !gotEcho {
		t.Fatalf("ARP reply %v, echo reply %v", gotARP, gotEcho)
	}
}
