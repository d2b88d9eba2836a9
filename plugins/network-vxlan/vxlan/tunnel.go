package vxlan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/sdk"
)

type mac [6]byte

func (m mac) String() string { return net.HardwareAddr(m[:]).String() }
func (m mac) group() bool    { return m[0]&1 == 1 }

// port is the tunnel's side of the local segment: lan.Uplink.
type port interface {
	Send(f []byte)
	Recv(ctx context.Context) ([]byte, error)
}

// peer is one remote VTEP. Datagrams are sent to addr and accepted from
// addr's IP with any source port: RFC 7348 VTEPs (Linux's) pick the source
// port per flow.
type peer struct {
	addr              netip.AddrPort
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
	lastRx            atomic.Int64 // unix nanos of the last datagram from it
	rttNanos          atomic.Int64 // last heartbeat round trip
}

// fdb is the forwarding table: which peer each remote MAC is behind.
type fdb struct {
	ageing time.Duration
	max    int

	mu sync.Mutex
	m  map[mac]fdbEntry
}

type fdbEntry struct {
	p    *peer
	seen time.Time
}

func newFDB(ageing time.Duration, max int) *fdb {
	return &fdb{ageing: ageing, max: max, m: map[mac]fdbEntry{}}
}

// learn records src behind p. A full table learns nothing new (frames to
// the unknown address are flooded, which is still correct).
func (t *fdb) learn(src mac, p *peer, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[src]; !ok && len(t.m) >= t.max {
		t.sweepLocked(now)
		if len(t.m) >= t.max {
			return
		}
	}
	t.m[src] = fdbEntry{p: p, seen: now}
}

// lookup is the peer dst is behind, nil when unknown or aged out.
func (t *fdb) lookup(dst mac, now time.Time) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[dst]
	if !ok {
		return nil
	}
	if now.Sub(e.seen) > t.ageing {
		delete(t.m, dst)
		return nil
	}
	return e.p
}

func (t *fdb) sweepLocked(now time.Time) {
	for k, e := range t.m {
		if now.Sub(e.seen) > t.ageing {
			delete(t.m, k)
		}
	}
}

// behind lists the live MACs behind every peer, sorted.
func (t *fdb) behind(now time.Time) map[*peer][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	out := map[*peer][]string{}
	for k, e := range t.m {
		out[e.p] = append(out[e.p], k.String())
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// Tunnel is the VXLAN uplink: one UDP socket, the peers and the table.
type Tunnel struct {
	log      hclog.Logger
	vni      uint32
	conn     *net.UDPConn
	seg      port
	peers    []*peer
	byIP     map[netip.Addr]*peer
	maxFrame int          // the largest inner frame the underlay MTU carries
	local    map[mac]bool // this cluster's guests: never learned behind a peer
	table    *fdb
	reach    time.Duration // a peer silent longer is unreachable
	drops    [numDropReasons]atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// TunnelConfig is what a Tunnel needs.
type TunnelConfig struct {
	VNI         uint32
	Listen      netip.AddrPort
	Peers       []netip.AddrPort
	UnderlayMTU int
	Ageing      time.Duration
	Heartbeat   time.Duration
	LocalMACs   []string
}

// errClosed ends the loops.
var errClosed = errors.New("the tunnel is closed")

// NewTunnel binds the UDP socket and starts carrying frames between seg
// and the peers until Close.
func NewTunnel(log hclog.Logger, c TunnelConfig, seg port) (*Tunnel, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(c.Listen))
	if err != nil {
		return nil, fmt.Errorf("binding the VXLAN socket on %s: %w", c.Listen, err)
	}
	// A burst from every guest of a peer lands on this one socket; the
	// default buffer (~200 KiB, 140 full frames) overflows before the
	// reader wakes. The kernel caps this at net.core.rmem_max.
	conn.SetReadBuffer(4 << 20)
	t := &Tunnel{log: log, vni: c.VNI, conn: conn, seg: seg, byIP: map[netip.Addr]*peer{},
		maxFrame: c.UnderlayMTU - overhead, local: map[mac]bool{}, table: newFDB(c.Ageing, 1<<14),
		reach: max(3*c.Heartbeat, 3*time.Second)}
	for _, a := range c.Peers {
		p := &peer{addr: a}
		t.peers = append(t.peers, p)
		t.byIP[a.Addr().Unmap()] = p
	}
	for _, s := range c.LocalMACs {
		if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
			t.local[mac(hw)] = true
		}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.done.Add(3)
	go t.fromPeers()
	go t.toPeers()
	go t.heartbeats(c.Heartbeat)
	log.Info("VXLAN tunnel up", "listen", conn.LocalAddr().String(), "vni", c.VNI, "peers", len(t.peers))
	return t, nil
}

// LocalAddr is the bound socket's address.
func (t *Tunnel) LocalAddr() netip.AddrPort { return t.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the loops and releases the socket.
func (t *Tunnel) Close() {
	t.cancel()
	t.conn.Close()
	t.done.Wait()
}

func (t *Tunnel) drop(r dropReason) { t.drops[r].Add(1) }

// fromPeers decapsulates datagrams into the segment.
func (t *Tunnel) fromPeers() {
	defer t.done.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.log.Warn("reading the VXLAN socket", "err", err)
			time.Sleep(10 * time.Millisecond) // a transient error (ICMP port unreachable) must not spin
			continue
		}
		t.receive(buf[:n], src, time.Now())
	}
}

// receive handles one datagram from src: the whole of what an untrusted
// sender can make the tunnel do.
func (t *Tunnel) receive(b []byte, src netip.AddrPort, now time.Time) {
	p := t.byIP[src.Addr().Unmap()]
	if p == nil {
		t.drop(dropUnknownPeer)
		return
	}
	if typ, sent, ok := parseHeartbeat(b); ok {
		p.lastRx.Store(now.UnixNano())
		switch typ {
		case hbPing:
			// Answer to where it came from: that is where the peer listens.
			t.conn.WriteToUDPAddrPort(heartbeat(hbPong, sent), src)
		case hbPong:
			if rtt := now.Sub(sent); rtt >= 0 && rtt < time.Minute {
				p.rttNanos.Store(int64(rtt))
			}
		}
		return
	}
	f, why, ok := decap(b, t.vni)
	if !ok {
		t.drop(why)
		return
	}
	p.lastRx.Store(now.UnixNano())
	src6 := mac(f[6:12])
	if t.local[src6] {
		// Two hosts with the same cluster name derive the same guest MACs;
		// letting one in would steal a local guest's traffic.
		t.drop(dropMACConflict)
		return
	}
	p.rxFrames.Add(1)
	p.rxBytes.Add(uint64(len(f)))
	if !src6.group() {
		t.table.learn(src6, p, now)
	}
	t.seg.Send(append([]byte(nil), f...))
}

// toPeers encapsulates what the segment forwards to the uplink: unicast to
// a learned MAC to its peer alone, everything else to every peer.
func (t *Tunnel) toPeers() {
	defer t.done.Done()
	for {
		f, err := t.seg.Recv(t.ctx)
		if err != nil {
			if t.ctx.Err() == nil {
				t.log.Warn("the segment closed under the tunnel", "err", err)
			}
			return
		}
		t.forward(f, time.Now())
	}
}

func (t *Tunnel) forward(f []byte, now time.Time) {
	if len(f) > t.maxFrame {
		t.drop(dropTooBig) // fragmenting would hide the MTU problem; see the README
		return
	}
	d := encap(t.vni, f)
	if dst := mac(f[0:6]); !dst.group() {
		if p := t.table.lookup(dst, now); p != nil {
			t.send(p, d, len(f))
			return
		}
	}
	for _, p := range t.peers {
		t.send(p, d, len(f))
	}
}

func (t *Tunnel) send(p *peer, d []byte, n int) {
	if _, err := t.conn.WriteToUDPAddrPort(d, p.addr); err != nil {
		t.drop(dropSendError)
		return
	}
	p.txFrames.Add(1)
	p.txBytes.Add(uint64(n))
}

func (t *Tunnel) heartbeats(every time.Duration) {
	defer t.done.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		for _, p := range t.peers {
			t.conn.WriteToUDPAddrPort(heartbeat(hbPing, time.Now()), p.addr)
		}
		select {
		case <-t.ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// Status is every peer's row and the tunnel's drops by reason.
func (t *Tunnel) Status(now time.Time) ([]sdk.Uplink, map[string]uint64) {
	behind := t.table.behind(now)
	var ups []sdk.Uplink
	for _, p := range t.peers {
		u := sdk.Uplink{Name: "vxlan", Address: p.addr.String(), LastSeenMillis: -1, MACs: behind[p],
			RxFrames: p.rxFrames.Load(), RxBytes: p.rxBytes.Load(), TxFrames: p.txFrames.Load(), TxBytes: p.txBytes.Load()}
		if u.MACs == nil {
			u.MACs = []string{}
		}
		if ls := p.lastRx.Load(); ls != 0 {
			ago := now.Sub(time.Unix(0, ls))
			u.LastSeenMillis = ago.Milliseconds()
			u.Reachable = ago <= t.reach
		}
		if r := p.rttNanos.Load(); r > 0 && u.Reachable {
			u.RTTMillis = float64(time.Duration(r).Microseconds()) / 1000
		}
		ups = append(ups, u)
	}
	drops := map[string]uint64{}
	for r := range t.drops {
		if n := t.drops[r].Load(); n > 0 {
			drops[dropNames[r]] = n
		}
	}
	return ups, drops
}
