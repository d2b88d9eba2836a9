package lan

import (
	"context"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/sdk"
)

// mac is an Ethernet address, usable as a map key.
type mac [6]byte

func (m mac) String() string { return net.HardwareAddr(m[:]).String() }

// group is true for broadcast and multicast destinations (the I/G bit).
func (m mac) group() bool { return m[0]&1 == 1 }

func parseMAC(s string) (mac, bool) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return mac{}, false
	}
	return mac(hw), true
}

// stationPort is the ingress "port" of the switch's own station (DHCP
// server and prober); guests are 0..n-1, uplinks uplinkPort(k).
const stationPort = -1

// uplinkPort is the port number of uplink k: below the station's, so a
// guest's index is still its port number.
func uplinkPort(k int) int { return -2 - k }

// Why a frame was discarded. Counted per segment; drops a port's guest
// could see are also counted on that port.
type dropReason int

const (
	dropRunt         dropReason = iota // shorter than an Ethernet header
	dropOversize                       // longer than maxFrameLen
	dropBadSource                      // source address is a group address
	dropSpoofedHost                    // a guest used the station's MAC
	dropQueueFull                      // the egress port's queue was full
	dropPortDown                       // the guest's socket is not there (guest not running)
	dropWriteTimeout                   // the guest did not read in time (paused or overloaded)
	dropForeign                        // a datagram on a port socket from someone else than its guest
	dropStationBusy                    // the station's queue was full
	dropExpired                        // waited longer than maxQueueDelay for a guest that did not read
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropRunt: "runt", dropOversize: "oversize", dropBadSource: "bad_source",
	dropSpoofedHost: "spoofed_host_mac", dropQueueFull: "queue_full", dropPortDown: "port_down",
	dropWriteTimeout: "write_timeout", dropForeign: "foreign_sender", dropStationBusy: "station_busy",
	dropExpired: "expired",
}

// maxQueueDelay bounds how old a frame a guest is handed may be. A guest
// that did not read for a while (booting with its NIC down, paused) would
// otherwise get a burst of stale probes and broadcasts ahead of fresh ones.
const maxQueueDelay = time.Second

// queued is a frame waiting for a guest, with when it was queued.
type queued struct {
	f  []byte
	at time.Time
}

type traffic struct{ frames, bytes atomic.Uint64 }

// counters are a port's frames and bytes by traffic class. Unknown
// EtherTypes are kept by number so the status can name them.
type counters struct {
	byClass [numClasses]traffic
	mu      sync.Mutex
	other   map[uint16]*sdk.Traffic
}

func (c *counters) add(f []byte) {
	cl, et := classify(f)
	c.byClass[cl].frames.Add(1)
	c.byClass[cl].bytes.Add(uint64(len(f)))
	if cl == classOther {
		c.mu.Lock()
		if c.other == nil {
			c.other = map[uint16]*sdk.Traffic{}
		}
		t := c.other[et]
		if t == nil {
			t = &sdk.Traffic{}
			c.other[et] = t
		}
		t.Frames++
		t.Bytes += uint64(len(f))
		c.mu.Unlock()
	}
}

func (c *counters) snapshot() (m map[string]sdk.Traffic, frames, bytes uint64) {
	m = map[string]sdk.Traffic{}
	for i := range c.byClass {
		if class(i) == classOther {
			continue
		}
		t := sdk.Traffic{Frames: c.byClass[i].frames.Load(), Bytes: c.byClass[i].bytes.Load()}
		if t.Frames > 0 {
			m[classNames[i]] = t
		}
		frames += t.Frames
		bytes += t.Bytes
	}
	c.mu.Lock()
	for et, t := range c.other {
		m[etherTypeName(et)] = *t
		frames += t.Frames
		bytes += t.Bytes
	}
	c.mu.Unlock()
	return m, frames, bytes
}

// Port is one guest's place on the switch, or an uplink's.
type Port struct {
	index uint32
	name  string
	mac   mac // the MAC the core gave the guest's NIC
	// queue holds frames for the guest until its transport writes them;
	// bounded, so one slow guest costs only its own frames.
	queue    chan queued
	rx, tx   counters
	lastSeen atomic.Int64 // unix nanoseconds of the last frame from the guest
	drops    atomic.Uint64

	mu  sync.Mutex
	ips []ipSeen // most recently seen last
}

type ipSeen struct {
	addr netip.Addr
	mac  mac
	at   time.Time
}

// maxIPsPerPort bounds what a chatty guest can make the switch remember.
const maxIPsPerPort = 8

func (p *Port) learnIP(a netip.Addr, from mac, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.ips {
		if s.addr == a {
			p.ips = append(p.ips[:i], p.ips[i+1:]...)
			break
		}
	}
	p.ips = append(p.ips, ipSeen{addr: a, mac: from, at: now})
	if len(p.ips) > maxIPsPerPort {
		p.ips = p.ips[len(p.ips)-maxIPsPerPort:]
	}
}

// latestIP is the address the guest used last, with the MAC it used it from.
func (p *Port) latestIP() (ipSeen, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ips) == 0 {
		return ipSeen{}, false
	}
	return p.ips[len(p.ips)-1], true
}

func (p *Port) ipList() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.ips))
	for i := len(p.ips) - 1; i >= 0; i-- {
		out = append(out, p.ips[i].addr.String())
	}
	return out
}

type fdbEntry struct {
	port int
	at   time.Time
}

// Switch is a learning Ethernet switch: one port per guest plus its own
// station. Frames are forwarded in the goroutine that received them; each
// port's transport drains that port's queue.
type Switch struct {
	log        hclog.Logger
	ports      []*Port
	guestMACs  map[mac]int // the MACs the core assigned, for attributing traffic
	stationMAC mac
	ageing     time.Duration

	// toStation hands a frame to the station; nil until one is attached.
	toStation func([]byte) bool

	// uplinks are ports that are not guests (see Segment.AddUplink); the
	// slice is replaced, never changed, so forwarding reads it unlocked.
	uplinks atomic.Pointer[[]*Port]

	fdbMu sync.Mutex
	fdb   map[mac]fdbEntry

	drops [numDropReasons]atomic.Uint64

	linksMu sync.Mutex
	links   map[[2]uint32]*sdk.Traffic

	tapsMu sync.RWMutex
	taps   map[*tap]struct{}
	ntaps  atomic.Int32
}

// guestSpec is what the switch needs to know about a guest.
type guestSpec struct {
	name string
	mac  mac
}

func newSwitch(log hclog.Logger, guests []guestSpec, stationMAC mac, ageing time.Duration, queueLen int) *Switch {
	s := &Switch{log: log, guestMACs: map[mac]int{}, stationMAC: stationMAC, ageing: ageing,
		fdb: map[mac]fdbEntry{}, links: map[[2]uint32]*sdk.Traffic{}, taps: map[*tap]struct{}{}}
	for i, g := range guests {
		s.ports = append(s.ports, &Port{index: uint32(i), name: g.name, mac: g.mac, queue: make(chan queued, queueLen)})
		s.guestMACs[g.mac] = i
	}
	return s
}

func (s *Switch) drop(r dropReason, p *Port) {
	s.drops[r].Add(1)
	if p != nil {
		p.drops.Add(1)
	}
}

// Ingress forwards a frame that entered on port from (a guest's index,
// stationPort for the station, uplinkPort(k) for an uplink). The switch
// keeps f: the caller must not reuse it.
func (s *Switch) Ingress(from int, f []byte) {
	now := time.Now()
	var in *Port
	if from != stationPort {
		if in = s.port(from); in == nil {
			return
		}
		in.lastSeen.Store(now.UnixNano())
	}
	if len(f) < headerLen {
		s.drop(dropRunt, in)
		return
	}
	if len(f) > maxFrameLen {
		s.drop(dropOversize, in)
		return
	}
	dst, src := mac(f[0:6]), mac(f[6:12])
	if src.group() {
		s.drop(dropBadSource, in)
		return
	}
	if in != nil {
		if src == s.stationMAC {
			s.drop(dropSpoofedHost, in)
			return
		}
		in.rx.add(f)
		s.learn(src, from, now)
		s.snoopARP(in, f, now)
	}
	out := s.lookup(dst, now)
	if s.ntaps.Load() > 0 {
		s.capture(from, dst, out, f, now)
	}
	switch {
	case dst.group():
		s.flood(from, f, true)
	case dst == s.stationMAC:
		if from != stationPort {
			s.deliverToStation(f, in)
		}
	case out >= 0 || out < stationPort:
		if out != from {
			s.countLink(from, out, f)
			s.port(out).enqueue(s, f)
		}
		// A frame for a station on its own port is filtered, as on any
		// switch: the guest (or the uplink) already has it.
	default:
		if g, ok := s.guestMACs[dst]; ok && g != from {
			s.countLink(from, g, f)
		}
		s.flood(from, f, false)
	}
}

// port is the port numbered i (a guest's index or uplinkPort(k)), or nil.
func (s *Switch) port(i int) *Port {
	if i >= 0 {
		if i < len(s.ports) {
			return s.ports[i]
		}
		return nil
	}
	if k := -2 - i; k >= 0 {
		if ups := s.uplinks.Load(); ups != nil && k < len(*ups) {
			return (*ups)[k]
		}
	}
	return nil
}

// addUplink adds a port that is not a guest and returns its number.
func (s *Switch) addUplink(name string, queueLen int) (int, *Port) {
	p := &Port{name: name, queue: make(chan queued, queueLen)}
	for {
		old := s.uplinks.Load()
		var ups []*Port
		if old != nil {
			ups = append(ups, *old...)
		}
		ups = append(ups, p)
		if s.uplinks.CompareAndSwap(old, &ups) {
			return uplinkPort(len(ups) - 1), p
		}
	}
}

// flood sends f to every port but the one it came from; group frames also
// reach the station.
func (s *Switch) flood(from int, f []byte, group bool) {
	for i, p := range s.ports {
		if i != from {
			p.enqueue(s, f)
		}
	}
	if ups := s.uplinks.Load(); ups != nil {
		for k, p := range *ups {
			if uplinkPort(k) != from {
				p.enqueue(s, f)
			}
		}
	}
	if group && from != stationPort {
		s.deliverToStation(f, nil)
	}
}

func (s *Switch) deliverToStation(f []byte, in *Port) {
	if s.toStation != nil && !s.toStation(f) {
		s.drop(dropStationBusy, in)
	}
}

func (p *Port) enqueue(s *Switch, f []byte) {
	select {
	case p.queue <- queued{f: f, at: time.Now()}:
	default:
		s.drop(dropQueueFull, p)
	}
}

// learn remembers which port a source address lives behind.
func (s *Switch) learn(src mac, port int, now time.Time) {
	s.fdbMu.Lock()
	e, ok := s.fdb[src]
	if !ok || e.port != port || now.Sub(e.at) > time.Second {
		if ok && e.port != port {
			s.log.Debug("MAC moved", "mac", src.String(), "from", e.port, "to", port)
		}
		s.fdb[src] = fdbEntry{port: port, at: now}
	}
	s.fdbMu.Unlock()
}

// lookup is the port a unicast destination was learned on, or -1 (unknown,
// aged out, or a group address).
func (s *Switch) lookup(dst mac, now time.Time) int {
	if dst.group() {
		return -1
	}
	s.fdbMu.Lock()
	defer s.fdbMu.Unlock()
	e, ok := s.fdb[dst]
	if !ok {
		return -1
	}
	if now.Sub(e.at) > s.ageing {
		delete(s.fdb, dst)
		return -1
	}
	return e.port
}

// sweep forgets addresses not seen for the ageing time, so a table that
// saw many addresses does not keep them forever.
func (s *Switch) sweep(now time.Time) {
	s.fdbMu.Lock()
	defer s.fdbMu.Unlock()
	for m, e := range s.fdb {
		if now.Sub(e.at) > s.ageing {
			delete(s.fdb, m)
		}
	}
}

// run sweeps the address table until ctx ends.
func (s *Switch) run(ctx context.Context) {
	t := time.NewTicker(max(s.ageing/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// snoopARP learns a guest's IPv4 address from the ARP frames it sends:
// Windows 98 announces itself that way, and everything that talks IPv4
// has to ARP.
func (s *Switch) snoopARP(in *Port, f []byte, now time.Time) {
	if len(f) < 42 || f[12] != 0x08 || f[13] != 0x06 {
		return
	}
	a := f[headerLen:]
	// Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
	if a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0x00 || a[4] != 6 || a[5] != 4 {
		return
	}
	ip := netip.AddrFrom4([4]byte(a[14:18]))
	if ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return
	}
	in.learnIP(ip, mac(a[8:14]), now)
}

func (s *Switch) countLink(from, to int, f []byte) {
	if from < 0 || to < 0 {
		return
	}
	k := [2]uint32{uint32(from), uint32(to)}
	s.linksMu.Lock()
	t := s.links[k]
	if t == nil {
		t = &sdk.Traffic{}
		s.links[k] = t
	}
	t.Frames++
	t.Bytes += uint64(len(f))
	s.linksMu.Unlock()
}

// Links is the connectivity matrix, ordered by (from, to).
func (s *Switch) Links() []sdk.Link {
	s.linksMu.Lock()
	out := make([]sdk.Link, 0, len(s.links))
	for k, t := range s.links {
		out = append(out, sdk.Link{From: k[0], To: k[1], Frames: t.Frames, Bytes: t.Bytes})
	}
	s.linksMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// Drops counts discarded frames by reason; reasons never seen are left out.
func (s *Switch) Drops() map[string]uint64 {
	out := map[string]uint64{}
	for i := range s.drops {
		if n := s.drops[i].Load(); n > 0 {
			out[dropNames[i]] = n
		}
	}
	return out
}

// tap is one running capture.
type tap struct {
	want    map[uint32]bool // nil: every frame
	snaplen uint32
	ch      chan sdk.CapturedFrame
	dropped atomic.Uint64
}

// capture copies f to every tap that wants it. dstPort is where a unicast
// frame goes (-1: unknown or group).
func (s *Switch) capture(from int, dst mac, dstPort int, f []byte, now time.Time) {
	s.tapsMu.RLock()
	defer s.tapsMu.RUnlock()
	if dstPort < 0 && !dst.group() {
		if g, ok := s.guestMACs[dst]; ok {
			dstPort = g
		}
	}
	for t := range s.taps {
		if t.want != nil && !dst.group() && !(from >= 0 && t.want[uint32(from)]) && !(dstPort >= 0 && t.want[uint32(dstPort)]) {
			continue
		}
		data := f
		if t.snaplen > 0 && uint32(len(data)) > t.snaplen {
			data = data[:t.snaplen]
		}
		// A frame from an uplink is no guest's of this cluster: like the
		// station's, it comes from the plugin's side of the segment.
		cf := sdk.CapturedFrame{Time: now, Data: data, Length: uint32(len(f)), FromHost: from < 0}
		if from >= 0 {
			cf.Ingress = uint32(from)
		}
		// The frame that gets through carries the count of those that did
		// not; if it does not get through either, the count grows.
		cf.Dropped = t.dropped.Swap(0)
		select {
		case t.ch <- cf:
		default:
			t.dropped.Add(cf.Dropped + 1)
		}
	}
}

// subscribe starts a capture; call the returned function to end it.
func (s *Switch) subscribe(req sdk.CaptureRequest) (*tap, func()) {
	t := &tap{snaplen: req.Snaplen, ch: make(chan sdk.CapturedFrame, 4096)}
	if len(req.Instances) > 0 {
		t.want = map[uint32]bool{}
		for _, i := range req.Instances {
			t.want[i] = true
		}
	}
	s.tapsMu.Lock()
	s.taps[t] = struct{}{}
	s.ntaps.Add(1)
	s.tapsMu.Unlock()
	return t, func() {
		s.tapsMu.Lock()
		if _, ok := s.taps[t]; ok {
			delete(s.taps, t)
			s.ntaps.Add(-1)
		}
		s.tapsMu.Unlock()
	}
}
