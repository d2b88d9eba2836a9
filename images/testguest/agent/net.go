//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The network commands let a host test prove the LAN from inside a guest:
// raw Ethernet frames of any type, UDP (broadcast too), TCP, and ping with
// every reply counted. Listeners run in the background and record what they
// receive; the host asks for it with a second command, so every command
// still gets exactly one line back.

// netState is what the background listeners collected.
type netState struct {
	mu       sync.Mutex
	sniffing bool
	// frames holds received non-IP frames by type key ("0x8137",
	// "802.3"), newest last, a bounded number each.
	frames     map[string][]rawFrame
	frameCount map[string]int // every frame by type key, kept or not
	incoming   int            // frames from the wire (not sent by this guest)
	selfEchoes int            // incoming frames with this guest's own source MAC
	// bcastEchoes counts broadcast ICMP echo requests from the wire: the
	// kernel's counters mix them with unicast pings.
	bcastEchoes int
	udp         map[int][]udpMsg // the last maxKept datagrams per port
	udpCount    map[int]int      // every datagram per port
	udpConns    map[int]net.PacketConn
	tcp         map[int]net.Listener
}

type rawFrame struct {
	src  string
	text string
}

type udpMsg struct {
	from string
	text string
}

const maxKept = 64

func newNetState() *netState {
	return &netState{frames: map[string][]rawFrame{}, frameCount: map[string]int{}, udp: map[int][]udpMsg{}, udpCount: map[int]int{},
		udpConns: map[int]net.PacketConn{}, tcp: map[int]net.Listener{}}
}

func (a *agent) netHandlers() map[string]handler {
	return map[string]handler{
		"raw-listen":  a.rawListen,
		"raw-send":    a.rawSend,
		"raw-recv":    a.rawRecv,
		"raw-stats":   a.rawStats,
		"udp-listen":  a.udpListen,
		"udp-send":    a.udpSend,
		"udp-recv":    a.udpRecv,
		"tcp-listen":  a.tcpListen,
		"tcp-connect": a.tcpConnect,
		"icmp-ping":   a.icmpPing,
		"icmp-echos":  a.icmpEchos,
		"udp-stats":   a.udpStats,
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

const ethPAll = 0x0003

func (a *agent) ifaceMAC() (net.HardwareAddr, int, error) {
	ifc, err := net.InterfaceByName(a.env.iface)
	if err != nil {
		return nil, 0, fmt.Errorf("interface %s: %w", a.env.iface, err)
	}
	return ifc.HardwareAddr, ifc.Index, nil
}

// frameKey names a frame's type: its EtherType, or "802.3" for frames whose
// type field is a length (raw IPX, LLC, NetBEUI).
func frameKey(et uint16) string {
	if et <= 1500 {
		return "802.3"
	}
	return fmt.Sprintf("0x%04x", et)
}

// printable keeps the text a test put in a payload, dropping padding and
// protocol bytes, with no spaces so replies stay one token per frame.
func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c > ' ' && c < 0x7f {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// rawListen starts recording every frame that arrives on the interface.
func (a *agent) rawListen(string) (string, error) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.sniffing {
		return "listening " + a.env.iface, nil
	}
	own, idx, err := a.ifaceMAC()
	if err != nil {
		return "", err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(ethPAll)))
	if err != nil {
		return "", fmt.Errorf("packet socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: idx}); err != nil {
		syscall.Close(fd)
		return "", fmt.Errorf("binding the packet socket to %s: %w", a.env.iface, err)
	}
	a.net.sniffing = true
	go a.sniff(fd, own)
	return "listening " + a.env.iface, nil
}

func (a *agent) sniff(fd int, own net.HardwareAddr) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ll, ok := from.(*syscall.SockaddrLinklayer)
		// PACKET_OUTGOING (4) is our own transmission, PACKET_LOOPBACK (5)
		// the kernel's local copy of our broadcasts: neither came from
		// the wire.
		if !ok || ll.Pkttype == 4 || ll.Pkttype == 5 || n < 14 {
			continue
		}
		f := buf[:n]
		src := net.HardwareAddr(f[6:12])
		et := binary.BigEndian.Uint16(f[12:14])
		a.net.mu.Lock()
		a.net.incoming++
		if src.String() == own.String() {
			a.net.selfEchoes++
		}
		if isBroadcastEcho(f) {
			a.net.bcastEchoes++
		}
		if et != 0x0800 && et != 0x0806 && et != 0x86dd {
			k := frameKey(et)
			a.net.frameCount[k]++
			fs := append(a.net.frames[k], rawFrame{src: src.String(), text: printable(f[14:])})
			if len(fs) > maxKept {
				fs = fs[len(fs)-maxKept:]
			}
			a.net.frames[k] = fs
		}
		a.net.mu.Unlock()
	}
}

// rawSend: raw-send TYPE DST TEXT [COUNT]. TYPE is an EtherType (0x8137),
// "802.3" for Novell raw IPX (length field, then 0xFFFF), or llc:SAP for an
// 802.2 LLC frame (llc:f0 is NetBEUI). DST is a MAC or "broadcast".
func (a *agent) rawSend(args string) (string, error) {
	f := strings.Fields(args)
	if len(f) < 3 || len(f) > 4 {
		return "", errors.New("usage: raw-send TYPE DST TEXT [COUNT]")
	}
	count := 1
	if len(f) == 4 {
		n, err := strconv.Atoi(f[3])
		if err != nil || n < 1 || n > 10000 {
			return "", fmt.Errorf("count %q: 1-10000", f[3])
		}
		count = n
	}
	dst := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if f[1] != "broadcast" {
		m, err := net.ParseMAC(f[1])
		if err != nil || len(m) != 6 {
			return "", fmt.Errorf("destination %q: a MAC or broadcast", f[1])
		}
		dst = m
	}
	var typ uint16
	var payload []byte
	switch {
	case f[0] == "802.3":
		payload = append([]byte{0xff, 0xff}, f[2]...)
	case strings.HasPrefix(f[0], "llc:"):
		sap, err := strconv.ParseUint(strings.TrimPrefix(f[0], "llc:"), 16, 8)
		if err != nil {
			return "", fmt.Errorf("type %q: llc:SAP with SAP in hex", f[0])
		}
		payload = append([]byte{byte(sap), byte(sap), 0x03}, f[2]...)
	default:
		v, err := strconv.ParseUint(f[0], 0, 16)
		if err != nil || v <= 1500 {
			return "", fmt.Errorf("type %q: an EtherType above 0x05dc, 802.3 or llc:SAP", f[0])
		}
		typ = uint16(v)
		payload = []byte(f[2])
	}
	if typ == 0 {
		typ = uint16(len(payload))
	}
	own, idx, err := a.ifaceMAC()
	if err != nil {
		return "", err
	}
	if len(own) != 6 {
		own = make(net.HardwareAddr, 6) // loopback has no address
	}
	frame := append(append(append([]byte{}, dst...), own...), byte(typ>>8), byte(typ))
	frame = append(frame, payload...)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
	if err != nil {
		return "", fmt.Errorf("packet socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrLinklayer{Ifindex: idx, Halen: 6}
	copy(to.Addr[:], dst)
	for i := 0; i < count; i++ {
		if err := syscall.Sendto(fd, frame, 0, to); err != nil {
			return "", fmt.Errorf("sending frame %d: %w", i+1, err)
		}
	}
	return fmt.Sprintf("sent %d frames of %d bytes", count, len(frame)), nil
}

// rawRecv: raw-recv TYPE lists the frames of that type received so far:
// "n=N SRC=TEXT ...". n counts every frame; the list holds the last 64.
func (a *agent) rawRecv(args string) (string, error) {
	if args == "" {
		return "", errors.New("usage: raw-recv TYPE (e.g. 0x8137, 802.3)")
	}
	key := args
	if v, err := strconv.ParseUint(args, 0, 16); err == nil {
		key = frameKey(uint16(v))
	}
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if !a.net.sniffing {
		return "", errors.New("not listening: send raw-listen first")
	}
	fs := a.net.frames[key]
	out := []string{fmt.Sprintf("n=%d", a.net.frameCount[key])}
	for _, fr := range fs {
		out = append(out, fr.src+"="+fr.text)
	}
	return strings.Join(out, " "), nil
}

// rawStats counts frames from the wire and, among them, any carrying this
// guest's own source MAC: a switch that echoes frames shows up here.
func (a *agent) rawStats(string) (string, error) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if !a.net.sniffing {
		return "", errors.New("not listening: send raw-listen first")
	}
	return fmt.Sprintf("incoming=%d self_echoes=%d bcast_echo_requests=%d", a.net.incoming, a.net.selfEchoes, a.net.bcastEchoes), nil
}

// isBroadcastEcho: an Ethernet broadcast carrying an IPv4 ICMP echo request.
func isBroadcastEcho(f []byte) bool {
	if len(f) < 14+20+8 || string(f[0:6]) != "\xff\xff\xff\xff\xff\xff" || f[12] != 0x08 || f[13] != 0x00 {
		return false
	}
	ihl := int(f[14]&0x0f) * 4
	return f[14]>>4 == 4 && f[14+9] == 1 && len(f) >= 14+ihl+8 && f[14+ihl] == 8
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: 1-65535", s)
	}
	return p, nil
}

// udpListen: udp-listen PORT records every datagram to PORT, broadcasts
// included.
func (a *agent) udpListen(args string) (string, error) {
	port, err := parsePort(args)
	if err != nil {
		return "", err
	}
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if _, ok := a.net.udpConns[port]; ok {
		return fmt.Sprintf("listening udp %d", port), nil
	}
	c, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return "", fmt.Errorf("listening on udp %d: %w", port, err)
	}
	a.net.udpConns[port] = c
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			a.net.mu.Lock()
			a.net.udpCount[port]++
			ms := append(a.net.udp[port], udpMsg{from: host, text: printable(buf[:n])})
			if len(ms) > maxKept {
				ms = ms[len(ms)-maxKept:]
			}
			a.net.udp[port] = ms
			a.net.mu.Unlock()
		}
	}()
	return fmt.Sprintf("listening udp %d", port), nil
}

// ifaceControl binds a socket to the interface and allows broadcast: the
// guest has no default route, and 255.255.255.255 needs one or this.
func (a *agent) ifaceControl(fd uintptr) error {
	if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); err != nil {
		return fmt.Errorf("SO_BROADCAST: %w", err)
	}
	if err := syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, a.env.iface); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", a.env.iface, err)
	}
	return nil
}

// udpSend: udp-send ADDR PORT TEXT [COUNT [SIZE]]. SIZE pads each
// datagram's payload with zero bytes, so a rate can be measured with
// full-size datagrams that nobody had to type.
func (a *agent) udpSend(args string) (string, error) {
	f := strings.Fields(args)
	if len(f) < 3 || len(f) > 5 {
		return "", errors.New("usage: udp-send ADDR PORT TEXT [COUNT [SIZE]]")
	}
	ip := net.ParseIP(f[0]).To4()
	if ip == nil {
		return "", fmt.Errorf("address %q: IPv4", f[0])
	}
	port, err := parsePort(f[1])
	if err != nil {
		return "", err
	}
	count := 1
	if len(f) >= 4 {
		if count, err = strconv.Atoi(f[3]); err != nil || count < 1 || count > 100000 {
			return "", fmt.Errorf("count %q: 1-100000", f[3])
		}
	}
	payload := []byte(f[2])
	if len(f) == 5 {
		size, err := strconv.Atoi(f[4])
		if err != nil || size < len(payload) || size > 1472 {
			return "", fmt.Errorf("size %q: %d-1472 bytes (the text, up to one Ethernet frame)", f[4], len(payload))
		}
		payload = append(payload, make([]byte, size-len(payload))...)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return "", fmt.Errorf("udp socket: %w", err)
	}
	defer syscall.Close(fd)
	if err := a.ifaceControl(uintptr(fd)); err != nil {
		return "", err
	}
	to := &syscall.SockaddrInet4{Port: port, Addr: [4]byte(ip)}
	start := time.Now()
	for i := 0; i < count; i++ {
		if err := syscall.Sendto(fd, payload, 0, to); err != nil {
			if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) {
				time.Sleep(time.Millisecond) // the NIC's queue is full: wait, as a game would
				i--
				continue
			}
			return "", fmt.Errorf("sending datagram %d: %w", i+1, err)
		}
	}
	return fmt.Sprintf("sent=%d ms=%.1f", count, float64(time.Since(start).Microseconds())/1000), nil
}

// udpRecv: udp-recv PORT lists what arrived: "n=N FROM=TEXT ...". n counts
// every datagram; the list holds the first 16 of the last 64.
func (a *agent) udpRecv(args string) (string, error) {
	port, err := parsePort(args)
	if err != nil {
		return "", err
	}
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if _, ok := a.net.udpConns[port]; !ok {
		return "", fmt.Errorf("not listening on udp %d: send udp-listen %d first", port, port)
	}
	ms := a.net.udp[port]
	out := []string{fmt.Sprintf("n=%d", a.net.udpCount[port])}
	for i, m := range ms {
		if i == 16 {
			break
		}
		out = append(out, m.from+"="+m.text)
	}
	return strings.Join(out, " "), nil
}

// tcpListen: tcp-listen PORT accepts connections; each gets one line back,
// "HOSTNAME got LINE", for the line it sends.
func (a *agent) tcpListen(args string) (string, error) {
	port, err := parsePort(args)
	if err != nil {
		return "", err
	}
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if _, ok := a.net.tcp[port]; ok {
		return fmt.Sprintf("listening tcp %d", port), nil
	}
	l, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return "", fmt.Errorf("listening on tcp %d: %w", port, err)
	}
	a.net.tcp[port] = l
	name, _ := a.env.hostname()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s got %s\n", name, strings.TrimSpace(line))
			}()
		}
	}()
	return fmt.Sprintf("listening tcp %d", port), nil
}

// tcpConnect: tcp-connect ADDR PORT TEXT sends TEXT and returns the reply.
func (a *agent) tcpConnect(args string) (string, error) {
	f := strings.Fields(args)
	if len(f) != 3 {
		return "", errors.New("usage: tcp-connect ADDR PORT TEXT")
	}
	port, err := parsePort(f[1])
	if err != nil {
		return "", err
	}
	c, err := net.DialTimeout("tcp4", net.JoinHostPort(f[0], strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("connecting: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", f[2]); err != nil {
		return "", fmt.Errorf("sending: %w", err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the reply: %w", err)
	}
	return strings.TrimSpace(reply), nil
}

// icmpPing: icmp-ping ADDR [COUNT [TIMEOUT_MS]] sends COUNT echo requests
// one after another. To a unicast address each waits for its reply (or the
// timeout); to a broadcast address each waits the whole timeout and counts
// every reply, by sender:
//
//	sent=N recv=M from=IP:n,IP:n min=MS p50=MS p99=MS max=MS
func (a *agent) icmpPing(args string) (string, error) {
	f := strings.Fields(args)
	if len(f) < 1 || len(f) > 3 {
		return "", errors.New("usage: icmp-ping ADDR [COUNT [TIMEOUT_MS]]")
	}
	ip := net.ParseIP(f[0]).To4()
	if ip == nil {
		return "", fmt.Errorf("address %q: IPv4", f[0])
	}
	count, timeout := 1, time.Second
	if len(f) >= 2 {
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 || n > 10000 {
			return "", fmt.Errorf("count %q: 1-10000", f[1])
		}
		count = n
	}
	if len(f) == 3 {
		ms, err := strconv.Atoi(f[2])
		if err != nil || ms < 1 || ms > 60000 {
			return "", fmt.Errorf("timeout %q: 1-60000 ms", f[2])
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	bcast := a.isBroadcast(ip)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err != nil {
		return "", fmt.Errorf("icmp socket: %w", err)
	}
	defer syscall.Close(fd)
	if err := a.ifaceControl(uintptr(fd)); err != nil {
		return "", err
	}
	id := uint16(os.Getpid())
	from := map[string]int{}
	var rtts []time.Duration
	recv := 0
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		msg := echoRequest(id, uint16(seq))
		sent := time.Now()
		if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrInet4{Addr: [4]byte(ip)}); err != nil {
			return "", fmt.Errorf("sending echo %d: %w", seq, err)
		}
		deadline := sent.Add(timeout)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			tv := syscall.NsecToTimeval(left.Nanoseconds())
			syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
					continue
				}
				return "", fmt.Errorf("receiving: %w", err)
			}
			src, rid, rseq, ok := parseEchoReply(buf[:n])
			if !ok || rid != id || rseq != uint16(seq) {
				continue
			}
			recv++
			from[src]++
			rtts = append(rtts, time.Since(sent))
			if !bcast {
				break
			}
		}
	}
	var srcs []string
	for s, n := range from {
		srcs = append(srcs, fmt.Sprintf("%s:%d", s, n))
	}
	sort.Strings(srcs)
	out := fmt.Sprintf("sent=%d recv=%d from=%s", count, recv, strings.Join(srcs, ","))
	if len(rtts) > 0 {
		sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
		out += fmt.Sprintf(" min=%s p50=%s p99=%s max=%s", ms(rtts[0]), ms(rtts[len(rtts)/2]),
			ms(rtts[min(len(rtts)-1, len(rtts)*99/100)]), ms(rtts[len(rtts)-1]))
	}
	return out, nil
}

// isBroadcast: the limited broadcast, or the interface's subnet broadcast.
func (a *agent) isBroadcast(ip net.IP) bool {
	if ip.Equal(net.IPv4bcast) {
		return true
	}
	ifc, err := net.InterfaceByName(a.env.iface)
	if err != nil {
		return false
	}
	addrs, _ := ifc.Addrs()
	for _, ad := range addrs {
		n, ok := ad.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		b := make(net.IP, 4)
		for i := range b {
			b[i] = n.IP.To4()[i] | ^n.Mask[i]
		}
		if b.Equal(ip) {
			return true
		}
	}
	return false
}

func echoRequest(id, seq uint16) []byte {
	m := make([]byte, 8+32)
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], "loco-agent icmp-ping payload....")
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	return m
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// parseEchoReply reads an IPv4 packet (a raw ICMP socket delivers the IP
// header) holding an ICMP echo reply.
func parseEchoReply(p []byte) (src string, id, seq uint16, ok bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return "", 0, 0, false
	}
	hl := int(p[0]&0x0f) * 4
	if len(p) < hl+8 || p[hl] != 0 {
		return "", 0, 0, false
	}
	return net.IP(p[12:16]).String(), binary.BigEndian.Uint16(p[hl+4:]), binary.BigEndian.Uint16(p[hl+6:]), true
}

// icmpEchos reads the kernel's ICMP counters: echo requests received and
// echo replies sent. A broadcast ping must raise in_echos by exactly one on
// every other guest.
func (a *agent) icmpEchos(string) (string, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return "", fmt.Errorf("reading /proc/net/snmp: %w", err)
	}
	vals, err := snmpCounters(string(b), "Icmp")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("in_echos=%s out_echo_reps=%s", vals["InEchos"], vals["OutEchoReps"]), nil
}

// udpStats reads the kernel's UDP counters: datagrams delivered, and those
// lost because a socket's buffer was full (the receiver fell behind).
func (a *agent) udpStats(string) (string, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return "", fmt.Errorf("reading /proc/net/snmp: %w", err)
	}
	vals, err := snmpCounters(string(b), "Udp")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("in=%s rcvbuf_errors=%s", vals["InDatagrams"], vals["RcvbufErrors"]), nil
}

// snmpCounters parses the header and value lines /proc/net/snmp has for
// each protocol.
func snmpCounters(s, proto string) (map[string]string, error) {
	var header []string
	for _, line := range strings.Split(s, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != proto+":" {
			continue
		}
		if header == nil {
			header = fields[1:]
			continue
		}
		out := map[string]string{}
		for i, v := range fields[1:] {
			if i < len(header) {
				out[header[i]] = v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no %s counters in /proc/net/snmp", proto)
}
