package lan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/sdk"
)

// segment is one configured LAN: the switch, its station, and the guests'
// sockets as they get bound.
type Segment struct {
	cfg     Config
	cluster sdk.Cluster
	log     hclog.Logger
	sw      *Switch
	st      *station
	paths   []portPaths
	ctx     context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	ports    []*unixPort // nil until bound
	retrying []bool
	started  bool
}

type portPaths struct {
	guest string // QEMU's end
	sw    string // the switch's end
}

// newSegment lays the LAN out; nothing is bound or sent until a guest is
// attached, so `loco validate` leaves no trace.
func NewSegment(log hclog.Logger, cfg Config, cluster sdk.Cluster) (*Segment, error) {
	if len(cluster.Instances) == 0 {
		return nil, errors.New("the cluster has no instances")
	}
	guests := make([]guestSpec, len(cluster.Instances))
	paths := make([]portPaths, len(cluster.Instances))
	for i, in := range cluster.Instances {
		if int(in.Index) != i {
			return nil, fmt.Errorf("instance %d is listed at position %d: the core must send instances in index order", in.Index, i)
		}
		m, ok := parseMAC(in.MAC)
		if !ok {
			return nil, fmt.Errorf("instance %s has no usable MAC (%q)", in.Name, in.MAC)
		}
		guests[i] = guestSpec{name: in.Name, mac: m}
		paths[i] = portPaths{guest: filepath.Join(in.StateDir, "net.sock"),
			sw: filepath.Join(cluster.StateDir, "lan", fmt.Sprintf("%d.sock", i))}
		for _, p := range []string{paths[i].guest, paths[i].sw} {
			if len(p) > maxUnixPath {
				return nil, fmt.Errorf("socket path %s is %d bytes, longer than the %d a unix socket allows: use a shorter state_dir", p, len(p), maxUnixPath)
			}
		}
	}
	sw := newSwitch(log, guests, stationMAC(guests[0].mac), cfg.ageing, cfg.queueFrames)
	s := &Segment{cfg: cfg, cluster: cluster, log: log, sw: sw, paths: paths,
		ports: make([]*unixPort, len(guests)), retrying: make([]bool, len(guests))}
	s.st = newStation(sw, log, cfg, guests)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// stationMAC is the switch's own address, the cluster's first plugin
// station (sdk.StationMAC): the same after every restart, so guests' ARP
// caches stay right.
func stationMAC(guest mac) mac {
	return mac(sdk.StationMAC(guest[:], 0))
}

// same tells whether a repeated Configure asks for exactly this segment.
func (s *Segment) Same(cfg Config, c sdk.Cluster) bool {
	if s.cfg != cfg || s.cluster.Name != c.Name || s.cluster.StateDir != c.StateDir || len(s.cluster.Instances) != len(c.Instances) {
		return false
	}
	for i, in := range c.Instances {
		o := s.cluster.Instances[i]
		if o.Index != in.Index || o.Name != in.Name || o.MAC != in.MAC || o.StateDir != in.StateDir {
			return false
		}
	}
	return true
}

// qemuArgs are guest i's netdev. They depend only on the configuration, so
// a restarted plugin gives running guests exactly what they already have.
func (s *Segment) qemuArgs(i int) []string {
	esc := func(p string) string { return strings.ReplaceAll(p, ",", ",,") } // QEMU's option escaping
	return []string{"-netdev", "dgram,id=" + sdk.NetdevID + ",local.type=unix,local.path=" + esc(s.paths[i].guest) +
		",remote.type=unix,remote.path=" + esc(s.paths[i].sw)}
}

// attach binds guest i's switch socket (once) and returns its netdev.
func (s *Segment) Attach(i int) ([]string, error) {
	if i < 0 || i >= len(s.paths) {
		return nil, fmt.Errorf("instance %d is not in the cluster this plugin was configured with (%d instances)", i, len(s.paths))
	}
	if err := s.bind(i); err != nil {
		if !errors.Is(err, errInUse) {
			return nil, fmt.Errorf("attaching %s: %w", s.cluster.Instances[i].Name, err)
		}
		// Another switch serves this cluster: this is `loco plan` next to
		// a running loco, or the previous switch has not quite exited.
		// Take over once it is gone.
		s.log.Warn("another switch holds this guest's socket; taking over when it exits", "guest", s.cluster.Instances[i].Name, "err", err)
		s.retryBind(i)
	}
	return s.qemuArgs(i), nil
}

func (s *Segment) bind(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ports[i] != nil {
		return nil
	}
	if s.ctx.Err() != nil {
		return errors.New("the LAN was reconfigured")
	}
	if err := os.MkdirAll(filepath.Dir(s.paths[i].sw), 0o700); err != nil {
		return fmt.Errorf("creating the switch's socket directory: %w", err)
	}
	conn, err := bindUnixgram(s.paths[i].sw)
	if err != nil {
		return err
	}
	u := &unixPort{sw: s.sw, idx: i, conn: conn, guestPath: s.paths[i].guest, writeTimeout: 250 * time.Millisecond}
	s.ports[i] = u
	go u.readLoop()
	go u.writeLoop(s.ctx)
	if !s.started {
		s.started = true
		go s.sw.run(s.ctx)
		go s.st.run(s.ctx)
		s.log.Info("LAN switch running", "station_mac", s.sw.stationMAC.String(), "station_ip", s.cfg.hostIP,
			"dhcp", s.cfg.dhcp, "subnet", s.cfg.subnet, "guests", len(s.paths))
	}
	return nil
}

func (s *Segment) retryBind(i int) {
	s.mu.Lock()
	if s.retrying[i] {
		s.mu.Unlock()
		return
	}
	s.retrying[i] = true
	s.mu.Unlock()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			err := s.bind(i)
			if err == nil {
				s.log.Info("took over the guest's socket", "guest", s.cluster.Instances[i].Name)
				return
			}
			if !errors.Is(err, errInUse) {
				s.log.Error("binding the guest's socket", "guest", s.cluster.Instances[i].Name, "err", err)
			}
		}
	}()
}

// close stops the segment and releases its sockets.
func (s *Segment) Close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.ports {
		if u != nil {
			u.conn.Close()
			os.Remove(s.paths[i].sw)
			s.ports[i] = nil
		}
	}
}

// linkTimeout is how long a guest may send nothing and still count as
// linked: it answers probes every interval when it has an address.
func (s *Segment) linkTimeout() time.Duration { return max(3*s.cfg.probeInterval, 3*time.Second) }

func (s *Segment) Status() sdk.LANStatus {
	now := time.Now()
	links := s.sw.Links()
	peers := map[uint32]map[uint32]bool{}
	for _, l := range links {
		for _, pair := range [][2]uint32{{l.From, l.To}, {l.To, l.From}} {
			if peers[pair[0]] == nil {
				peers[pair[0]] = map[uint32]bool{}
			}
			peers[pair[0]][pair[1]] = true
		}
	}
	st := sdk.LANStatus{HostMAC: s.sw.stationMAC.String(), HostIP: s.cfg.hostIP.String(), Drops: s.sw.Drops(), Links: links}
	if s.cfg.dhcp {
		st.Subnet = s.cfg.subnet.String()
	}
	var problems []string
	reachable := 0
	for i, p := range s.sw.ports {
		rx, rxF, rxB := p.rx.snapshot()
		tx, txF, txB := p.tx.snapshot()
		byType := map[string]uint64{}
		for k, t := range rx {
			byType[k] += t.Frames
		}
		for k, t := range tx {
			byType[k] += t.Frames
		}
		v := s.st.view(i)
		port := sdk.Port{Instance: p.index, Name: p.name, MAC: p.mac.String(), IPs: p.ipList(),
			RxFrames: rxF, RxBytes: rxB, TxFrames: txF, TxBytes: txB, Drops: p.drops.Load(),
			FramesByEtherType: byType, RxByEtherType: rx, TxByEtherType: tx, Peers: []uint32{},
			Reachable: v.reachable, LastSeenMillis: -1, LastReplyMillis: -1}
		if v.rtt > 0 {
			port.RTTMillis = float64(v.rtt.Microseconds()) / 1000
		}
		if ls := p.lastSeen.Load(); ls != 0 {
			ago := now.Sub(time.Unix(0, ls))
			port.LastSeenMillis = ago.Milliseconds()
			port.LinkUp = ago <= s.linkTimeout()
		}
		if !v.lastReply.IsZero() {
			port.LastReplyMillis = now.Sub(v.lastReply).Milliseconds()
		}
		for q := range peers[p.index] {
			port.Peers = append(port.Peers, q)
		}
		sort.Slice(port.Peers, func(a, b int) bool { return port.Peers[a] < port.Peers[b] })
		switch {
		case port.LastSeenMillis < 0:
			problems = append(problems, p.name+" never sent a frame")
		case !port.LinkUp:
			problems = append(problems, fmt.Sprintf("%s silent for %s", p.name, (time.Duration(port.LastSeenMillis)*time.Millisecond).Round(100*time.Millisecond)))
		case !port.Reachable && len(port.IPs) == 0:
			problems = append(problems, p.name+" has no IPv4 address yet")
		case !port.Reachable:
			problems = append(problems, p.name+" does not answer ARP or ping")
		}
		if port.Reachable {
			reachable++
		}
		st.Ports = append(st.Ports, port)
	}
	st.Healthy = len(problems) == 0
	st.Summary = fmt.Sprintf("%d/%d guests reachable", reachable, len(s.sw.ports))
	if len(problems) > 0 {
		st.Summary += ": " + strings.Join(problems, "; ")
	}
	return st
}

// Capture streams the frames entering the segment to send until ctx ends
// or the segment is closed.
func (s *Segment) Capture(ctx context.Context, req sdk.CaptureRequest, send func(sdk.CapturedFrame) error) error {
	for _, i := range req.Instances {
		if int(i) >= len(s.sw.ports) {
			return fmt.Errorf("no instance %d: the cluster has %d: %w", i, len(s.sw.ports), sdk.ErrInvalid)
		}
	}
	t, stop := s.sw.subscribe(req)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return errors.New("the LAN was reconfigured; capture again")
		case f := <-t.ch:
			if err := send(f); err != nil {
				return fmt.Errorf("sending a captured frame: %w", err)
			}
		}
	}
}
