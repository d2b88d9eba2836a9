package lan

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/hashicorp/go-hclog"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/locolan/loco/sdk"
)

// station is the switch's own host on the segment: it answers ARP and ping
// for its address, serves DHCP, and probes every guest with ARP and ICMP
// echo to measure reachability and round-trip time without any agent in
// the guest.
type station struct {
	sw       *Switch
	log      hclog.Logger
	mac      mac
	ip       netip.Addr
	dhcp     *dhcpServer // nil when DHCP is off
	leases   []netip.Addr
	interval time.Duration
	// in is bounded: a flood of broadcasts must not grow memory.
	in     chan []byte
	icmpID uint16

	rtt []*sdk.HistogramValue // ICMP round trips by guest index (metrics.go)

	mu     sync.Mutex
	probes []probeState // by guest index
	seq    uint16
}

type probeState struct {
	target    netip.Addr
	pending   map[uint16]time.Time // ICMP sequence -> sent
	arpSent   time.Time
	lastReply time.Time
	rtt       time.Duration
	icmpRTT   bool
	reachable bool
}

func newStation(sw *Switch, log hclog.Logger, c Config, guests []guestSpec) *station {
	st := &station{sw: sw, log: log, mac: sw.stationMAC, ip: c.hostIP, interval: c.probeInterval,
		in: make(chan []byte, 1024), icmpID: 0x10c0, probes: make([]probeState, len(guests))}
	if c.dhcp {
		st.dhcp = newDHCPServer(c, guests)
		for i := range guests {
			st.leases = append(st.leases, c.leaseFor(i))
		}
	}
	for i := range st.probes {
		st.probes[i].pending = map[uint16]time.Time{}
		st.rtt = append(st.rtt, sdk.NewHistogram(rttBuckets...))
	}
	sw.toStation = func(f []byte) bool {
		select {
		case st.in <- f:
			return true
		default:
			return false
		}
	}
	return st
}

// unreachableAfter is how long a guest may stay silent to probes before it
// counts as unreachable: three probe rounds, so one lost reply is no alarm.
func (st *station) unreachableAfter() time.Duration { return 3 * st.interval }

func (st *station) run(ctx context.Context) {
	t := time.NewTicker(st.interval)
	defer t.Stop()
	st.probeAll(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-st.in:
			st.handle(f, time.Now())
		case now := <-t.C:
			st.probeAll(now)
		}
	}
}

// send puts a frame the station built onto the segment. Short frames are
// padded to Ethernet's minimum as a real NIC would.
func (st *station) send(ls ...gopacket.SerializableLayer) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		st.log.Error("building a frame", "err", err)
		return
	}
	f := append([]byte(nil), buf.Bytes()...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	st.sw.Ingress(stationPort, f)
}

func (st *station) eth(dst mac, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr(st.mac[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: et}
}

func (st *station) ipv4(dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP(st.ip.AsSlice()), DstIP: net.IP(dst.AsSlice())}
}

// probeAll sends every guest with a known address an ARP request and an
// ICMP echo request, and ages out probes nobody answered.
func (st *station) probeAll(now time.Time) {
	for i, p := range st.sw.ports {
		target, dst := netip.Addr{}, p.mac
		if seen, ok := p.latestIP(); ok {
			target, dst = seen.addr, seen.mac
		} else if st.dhcp != nil {
			// After a restart of the switch the guests still hold their
			// leases; probing them at once finds them before they speak.
			target = st.leases[i]
		}
		st.mu.Lock()
		pr := &st.probes[i]
		for seq, sent := range pr.pending {
			if now.Sub(sent) > st.unreachableAfter() {
				delete(pr.pending, seq)
			}
		}
		if pr.reachable && now.Sub(pr.lastReply) > st.unreachableAfter() {
			pr.reachable = false
			st.log.Warn("guest unreachable", "guest", p.name, "ip", pr.target, "silent_for", now.Sub(pr.lastReply).Round(time.Millisecond))
		}
		if !target.IsValid() {
			st.mu.Unlock()
			continue
		}
		if pr.target != target {
			pr.target = target
			clear(pr.pending)
		}
		st.seq++
		seq := st.seq
		pr.pending[seq] = now
		pr.arpSent = now
		st.mu.Unlock()

		st.send(st.eth(dst, layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: st.mac[:], SourceProtAddress: st.ip.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice()})
		payload := make([]byte, 16)
		binary.BigEndian.PutUint64(payload, uint64(now.UnixNano()))
		st.send(st.eth(dst, layers.EthernetTypeIPv4), st.ipv4(target, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: st.icmpID, Seq: seq},
			gopacket.Payload(payload))
	}
}

// replied records an answer to a probe from guest i.
func (st *station) replied(i int, from netip.Addr, rtt time.Duration, icmp bool, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	pr := &st.probes[i]
	if pr.target != from {
		return
	}
	if !pr.reachable {
		st.log.Info("guest reachable", "guest", st.sw.ports[i].name, "ip", from, "rtt", rtt)
	}
	pr.lastReply, pr.reachable = now, true
	st.observeRTT(i, rtt, icmp)
	// An ICMP round trip measures the guest's IP stack, which is what a
	// game feels; ARP only stands in until the first echo reply.
	if icmp || !pr.icmpRTT {
		pr.rtt, pr.icmpRTT = rtt, icmp
	}
}

// guestOf is the guest a source address belongs to, or -1.
func (st *station) guestOf(src mac) int {
	if i, ok := st.sw.guestMACs[src]; ok {
		return i
	}
	if p := st.sw.lookup(src, time.Now()); p >= 0 {
		return p
	}
	return -1
}

// handle answers one frame that reached the station. Anything it cannot
// parse is ignored: guests may send whatever they like.
func (st *station) handle(f []byte, now time.Time) {
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil || len(eth.SrcMAC) != 6 {
		return
	}
	src := mac(eth.SrcMAC)
	if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		st.handleARP(src, arp, now)
		return
	}
	ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		return
	}
	if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && udp.DstPort == 67 && st.dhcp != nil {
		st.handleDHCP(src, udp.Payload)
		return
	}
	dstIP, _ := netip.AddrFromSlice(ip4.DstIP.To4())
	srcIP, _ := netip.AddrFromSlice(ip4.SrcIP.To4())
	if dstIP != st.ip || !srcIP.IsValid() {
		return
	}
	icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok {
		return
	}
	switch icmp.TypeCode.Type() {
	case layers.ICMPv4TypeEchoRequest:
		// Answering pings lets a guest (or a person at its console) check
		// the LAN with nothing but ping.
		st.send(st.eth(src, layers.EthernetTypeIPv4), st.ipv4(srcIP, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: icmp.Id, Seq: icmp.Seq},
			gopacket.Payload(icmp.Payload))
	case layers.ICMPv4TypeEchoReply:
		if icmp.Id != st.icmpID {
			return
		}
		i := st.guestOf(src)
		if i < 0 {
			return
		}
		st.mu.Lock()
		sent, ok := st.probes[i].pending[icmp.Seq]
		delete(st.probes[i].pending, icmp.Seq)
		st.mu.Unlock()
		if ok {
			st.replied(i, srcIP, now.Sub(sent), true, now)
		}
	}
}

func (st *station) handleARP(src mac, arp *layers.ARP, now time.Time) {
	if arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
		len(arp.SourceHwAddress) != 6 || len(arp.SourceProtAddress) != 4 || len(arp.DstProtAddress) != 4 {
		return
	}
	target := netip.AddrFrom4([4]byte(arp.DstProtAddress))
	sender := netip.AddrFrom4([4]byte(arp.SourceProtAddress))
	switch arp.Operation {
	case layers.ARPRequest:
		if target != st.ip || sender.IsUnspecified() {
			return
		}
		st.send(st.eth(mac(arp.SourceHwAddress), layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: st.mac[:], SourceProtAddress: st.ip.AsSlice(),
			DstHwAddress: arp.SourceHwAddress, DstProtAddress: arp.SourceProtAddress})
	case layers.ARPReply:
		if target != st.ip {
			return
		}
		i := st.guestOf(src)
		if i < 0 {
			return
		}
		st.mu.Lock()
		sent := st.probes[i].arpSent
		st.mu.Unlock()
		if !sent.IsZero() {
			st.replied(i, sender, now.Sub(sent), false, now)
		}
	}
}

func (st *station) handleDHCP(src mac, payload []byte) {
	req, err := dhcpv4.FromBytes(payload)
	if err != nil {
		st.log.Debug("ignoring a malformed DHCP message", "from", src.String(), "err", err)
		return
	}
	r, err := st.dhcp.respond(req)
	if err != nil {
		st.log.Error("DHCP", "err", err)
		return
	}
	if r == nil {
		return
	}
	if r.msg.MessageType() == dhcpv4.MessageTypeAck && !r.msg.YourIPAddr.IsUnspecified() {
		if i, ok := st.sw.guestMACs[mac(r.msg.ClientHWAddr)]; ok {
			if a, ok := netip.AddrFromSlice(r.msg.YourIPAddr.To4()); ok {
				st.sw.ports[i].learnIP(a, mac(r.msg.ClientHWAddr), time.Now())
				st.log.Info("DHCP lease", "guest", st.sw.ports[i].name, "ip", a)
			}
		}
	}
	udp := &layers.UDP{SrcPort: 67, DstPort: 68}
	ip := st.ipv4(r.dstIP, layers.IPProtocolUDP)
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		st.log.Error("DHCP checksum", "err", err)
		return
	}
	st.send(st.eth(r.dst, layers.EthernetTypeIPv4), ip, udp, gopacket.Payload(r.msg.ToBytes()))
}

// probeView is a guest's probe state for the status.
type probeView struct {
	reachable bool
	rtt       time.Duration
	lastReply time.Time
}

func (st *station) view(i int) probeView {
	st.mu.Lock()
	defer st.mu.Unlock()
	pr := st.probes[i]
	return probeView{reachable: pr.reachable && time.Since(pr.lastReply) <= st.unreachableAfter(), rtt: pr.rtt, lastReply: pr.lastReply}
}
