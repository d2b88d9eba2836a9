package lan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/sdk"
)

// testGuest stands where QEMU stands: a unix datagram socket bound at the
// guest's path, sending to the switch's path. It is the same kernel object
// QEMU's -netdev dgram uses, so the switch cannot tell the difference.
type testGuest struct {
	t      testing.TB
	conn   *net.UnixConn
	path   string
	swPath string
	mac    mac
}

func (g *testGuest) send(f []byte) {
	g.t.Helper()
	if err := g.trySend(f); err != nil {
		g.t.Fatalf("guest %s sending: %v", g.mac, err)
	}
}

// trySend is send for moments the switch may be away, as QEMU sees them.
func (g *testGuest) trySend(f []byte) error {
	_, err := g.conn.WriteToUnix(f, &net.UnixAddr{Name: g.swPath, Net: "unixgram"})
	return err
}

// recv returns the next frame not sent by the switch's station (its probes
// would otherwise get in the way), or nil after timeout.
func (g *testGuest) recv(timeout time.Duration, station mac) []byte {
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(timeout)
	for {
		g.conn.SetReadDeadline(deadline)
		n, err := g.conn.Read(buf)
		if err != nil {
			return nil
		}
		if n >= 12 && mac(buf[6:12]) == station {
			continue
		}
		return append([]byte(nil), buf[:n]...)
	}
}

// drain collects the frames that arrive until none comes for quiet.
func (g *testGuest) drain(quiet time.Duration, station mac) [][]byte {
	var out [][]byte
	for {
		f := g.recv(quiet, station)
		if f == nil {
			return out
		}
		out = append(out, f)
	}
}

// reopen rebinds the guest's socket, as a restarted QEMU does.
func (g *testGuest) reopen() {
	g.t.Helper()
	g.conn.Close()
	os.Remove(g.path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: g.path, Net: "unixgram"})
	if err != nil {
		g.t.Fatal(err)
	}
	g.conn = c
}

func testCluster(t testing.TB, n int) sdk.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "lan")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := sdk.Cluster{Name: "t", StateDir: dir}
	for i := 0; i < n; i++ {
		gd := filepath.Join(dir, "guests", fmt.Sprint(i))
		if err := os.MkdirAll(gd, 0o700); err != nil {
			t.Fatal(err)
		}
		c.Instances = append(c.Instances, sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("t-%d", i),
			MAC: fmt.Sprintf("52:aa:bb:00:00:%02x", i), StateDir: gd})
	}
	return c
}

func defaultRaw() RawConfig {
	return RawConfig{Subnet: defaultSubnet, DHCP: true, FirstLease: defaultFirstLease, LeaseTime: defaultLeaseTime,
		ProbeInterval: defaultProbeInterval, MACAgeing: defaultAgeing, QueueFrames: defaultQueueFrames}
}

// startLAN configures a segment for n guests, attaches them all and binds
// a test guest at each guest path.
func startLAN(t testing.TB, n int, raw RawConfig) (*Segment, []*testGuest) {
	t.Helper()
	cl := testCluster(t, n)
	return startLANIn(t, cl, raw)
}

func startLANIn(t testing.TB, cl sdk.Cluster, raw RawConfig) (*Segment, []*testGuest) {
	t.Helper()
	cfg, err := ParseConfig(raw, len(cl.Instances))
	if err != nil {
		t.Fatal(err)
	}
	log := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	seg, err := NewSegment(log, cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seg.Close)
	// Guests first: in real life QEMU binds before the switch writes to
	// it, and a switch that finds no guest waits a little before retrying.
	var guests []*testGuest
	for i, in := range cl.Instances {
		m, _ := parseMAC(in.MAC)
		g := &testGuest{t: t, path: seg.paths[i].guest, swPath: seg.paths[i].sw, mac: m}
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: g.path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		g.conn = c
		t.Cleanup(func() { g.conn.Close() })
		guests = append(guests, g)
	}
	for i := range cl.Instances {
		if _, err := seg.Attach(i); err != nil {
			t.Fatal(err)
		}
	}
	return seg, guests
}

// frame builds an Ethernet II frame (et > 1500) or an 802.3 frame whose
// length field the payload sets (et == 0).
func frame(dst, src mac, et uint16, payload []byte) []byte {
	f := make([]byte, 0, 14+len(payload))
	f = append(f, dst[:]...)
	f = append(f, src[:]...)
	if et == 0 {
		et = uint16(len(payload))
	}
	f = binary.BigEndian.AppendUint16(f, et)
	return append(f, payload...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsFrame(fs [][]byte, f []byte) int {
	n := 0
	for _, x := range fs {
		if bytes.Equal(x, f) {
			n++
		}
	}
	return n
}
