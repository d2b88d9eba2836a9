package lan

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/sdk"
)

const quiet = 150 * time.Millisecond

// TestEveryEtherTypeFloodsToEveryOtherPortOnce: what LAN games send to find
// each other reaches every other guest exactly once and never comes back.
func TestEveryEtherTypeFloodsToEveryOtherPortOnce(t *testing.T) {
	seg, g := startLAN(t, 4, defaultRaw())
	st := seg.sw.stationMAC
	ipx := append([]byte{0x00, 0x1e, 0x00, 0x04}, bytes.Repeat([]byte{0xab}, 40)...)
	cases := []struct {
		name  string
		dst   mac
		et    uint16
		body  []byte
		class string
	}{
		{"IPv4 broadcast", broadcastMAC, 0x0800, bytes.Repeat([]byte{0x45}, 46), "IPv4"},
		{"ARP", broadcastMAC, 0x0806, bytes.Repeat([]byte{1}, 28), "ARP"},
		{"IPX Ethernet II", broadcastMAC, 0x8137, ipx, "IPX"},
		{"IPX raw 802.3", broadcastMAC, 0, append([]byte{0xff, 0xff}, ipx...), "IPX/802.3"},
		{"IPX 802.2 LLC", broadcastMAC, 0, append([]byte{0xe0, 0xe0, 0x03}, ipx...), "IPX/LLC"},
		{"NetBEUI", mac{0x03, 0, 0, 0, 0, 1}, 0, append([]byte{0xf0, 0xf0, 0x03}, bytes.Repeat([]byte{9}, 44)...), "NetBEUI"},
		{"IPv6 multicast", mac{0x33, 0x33, 0, 0, 0, 1}, 0x86dd, bytes.Repeat([]byte{0x60}, 60), "IPv6"},
		{"unknown unicast", mac{0x52, 0xaa, 0xbb, 0x00, 0x00, 0x99}, 0x0800, bytes.Repeat([]byte{0x45}, 46), "IPv4"},
		{"unknown EtherType", broadcastMAC, 0x88b5, []byte("local experimental"), "0x88b5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := seg.Status().Ports[0].RxByEtherType[tc.class].Frames
			f := frame(tc.dst, g[0].mac, tc.et, tc.body)
			g[0].send(f)
			for i := 1; i < len(g); i++ {
				got := g[i].drain(quiet, st)
				if n := containsFrame(got, f); n != 1 {
					t.Errorf("guest %d got the frame %d times (%d frames in all)", i, n, len(got))
				}
			}
			if back := g[0].drain(quiet, st); containsFrame(back, f) != 0 {
				t.Errorf("the frame came back to its sender")
			}
			if after := seg.Status().Ports[0].RxByEtherType[tc.class].Frames; after != before+1 {
				t.Errorf("rx counter %q went %d -> %d", tc.class, before, after)
			}
		})
	}
}

// TestLearnedUnicastGoesOnlyToItsPort checks learning: once B has spoken,
// frames for B reach B alone, and are counted on the A->B link.
func TestLearnedUnicastGoesOnlyToItsPort(t *testing.T) {
	seg, g := startLAN(t, 3, defaultRaw())
	st := seg.sw.stationMAC
	g[1].send(frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46))) // B speaks
	for _, x := range g {
		x.drain(quiet, st)
	}
	f := frame(g[1].mac, g[0].mac, 0x0800, bytes.Repeat([]byte{7}, 46))
	g[0].send(f)
	if got := g[1].drain(quiet, st); containsFrame(got, f) != 1 {
		t.Errorf("destination got %d frames, want the one", len(got))
	}
	if got := g[2].drain(quiet, st); len(got) != 0 {
		t.Errorf("a third guest saw %d frames of a learned unicast", len(got))
	}
	links := seg.sw.Links()
	if len(links) != 1 || links[0].From != 0 || links[0].To != 1 || links[0].Frames != 1 {
		t.Errorf("links: %+v", links)
	}
	if p := seg.Status().Ports[0].Peers; len(p) != 1 || p[0] != 1 {
		t.Errorf("guest 0 peers: %v", p)
	}
}

// TestMalformedFramesAreDroppedAndCounted: runts, giants and frames from a
// group source address never leave the switch.
func TestMalformedFramesAreDroppedAndCounted(t *testing.T) {
	seg, g := startLAN(t, 2, defaultRaw())
	st := seg.sw.stationMAC
	cases := []struct {
		name, reason string
		f            []byte
	}{
		{"empty", "runt", []byte{}},
		{"shorter than a header", "runt", make([]byte, 13)},
		{"oversize", "oversize", frame(broadcastMAC, g[0].mac, 0x0800, make([]byte, 1600))},
		{"group source", "bad_source", frame(broadcastMAC, mac{0x01, 0, 0x5e, 0, 0, 1}, 0x0800, make([]byte, 46))},
		{"station's MAC as source", "spoofed_host_mac", frame(broadcastMAC, st, 0x0800, make([]byte, 46))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := seg.sw.Drops()[tc.reason]
			portBefore := seg.Status().Ports[0].Drops
			g[0].send(tc.f)
			waitFor(t, "the drop counter", 5*time.Second, func() bool { return seg.sw.Drops()[tc.reason] == before+1 })
			if got := g[1].drain(quiet, st); len(got) != 0 {
				t.Errorf("the other guest got %d frames", len(got))
			}
			if d := seg.Status().Ports[0].Drops; d != portBefore+1 {
				t.Errorf("port drops %d -> %d", portBefore, d)
			}
		})
	}
}

// TestAgeingForgetsAddresses: after the ageing time a MAC is unknown again
// and frames for it are flooded.
func TestAgeingForgetsAddresses(t *testing.T) {
	sw := newSwitch(hclog.NewNullLogger(), []guestSpec{{"a", mac{2, 0, 0, 0, 0, 1}}, {"b", mac{2, 0, 0, 0, 0, 2}}, {"c", mac{2, 0, 0, 0, 0, 3}}},
		mac{2, 0, 0, 0xff, 0xff, 0xfe}, 100*time.Millisecond, 16)
	sw.Ingress(1, frame(broadcastMAC, mac{2, 0, 0, 0, 0, 2}, 0x0800, make([]byte, 46)))
	<-sw.ports[0].queue
	<-sw.ports[2].queue
	sw.Ingress(0, frame(mac{2, 0, 0, 0, 0, 2}, mac{2, 0, 0, 0, 0, 1}, 0x0800, make([]byte, 46)))
	if len(sw.ports[2].queue) != 0 {
		t.Fatal("a learned unicast was flooded")
	}
	<-sw.ports[1].queue
	time.Sleep(150 * time.Millisecond)
	sw.sweep(time.Now())
	sw.Ingress(0, frame(mac{2, 0, 0, 0, 0, 2}, mac{2, 0, 0, 0, 0, 1}, 0x0800, make([]byte, 46)))
	if len(sw.ports[2].queue) != 1 || len(sw.ports[1].queue) != 1 {
		t.Fatalf("after ageing the frame was not flooded: queues %d %d", len(sw.ports[1].queue), len(sw.ports[2].queue))
	}
}

// TestSlowGuestCostsOnlyItsOwnFrames: a guest that stops reading fills its
// own bounded queue; the switch drops for it and carries on for others.
func TestSlowGuestCostsOnlyItsOwnFrames(t *testing.T) {
	raw := defaultRaw()
	raw.QueueFrames = 16
	seg, g := startLAN(t, 3, raw)
	st := seg.sw.stationMAC
	// Guest 2 never reads. 200 broadcasts overflow its kernel queue (10
	// datagrams), then its write timeout holds the writer while the
	// 16-frame queue fills.
	const n = 200
	got := make(chan int)
	go func() {
		c := 0
		for c < n {
			if g[1].recv(2*time.Second, st) == nil {
				break
			}
			c++
		}
		got <- c
	}()
	for i := 0; i < n; i++ {
		g[0].send(frame(broadcastMAC, g[0].mac, 0x0800, make([]byte, 46)))
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond) // let the reader keep up; the switch is not what is measured
		}
	}
	if c := <-got; c != n {
		t.Errorf("the reading guest got %d of %d frames", c, n)
	}
	waitFor(t, "drops for the stuck guest", 10*time.Second, func() bool { return seg.Status().Ports[2].Drops > 0 })
	d := seg.sw.Drops()
	if d["queue_full"]+d["write_timeout"]+d["expired"] == 0 {
		t.Errorf("drops: %v", d)
	}
	if seg.Status().Ports[1].Drops != 0 {
		t.Errorf("the reading guest had drops")
	}
}

// TestSwitchRestartKeepsGuestsConnected: a new switch process on the same
// paths reaches guests that never reopened their sockets, as QEMU's
// -netdev dgram never does.
func TestSwitchRestartKeepsGuestsConnected(t *testing.T) {
	cl := testCluster(t, 2)
	seg, g := startLANIn(t, cl, defaultRaw())
	st := seg.sw.stationMAC
	seg.Close()
	cfg, _ := ParseConfig(defaultRaw(), 2)
	seg2, err := NewSegment(hclog.NewNullLogger(), cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	defer seg2.Close()
	for i := range g {
		args, err := seg2.Attach(i)
		if err != nil {
			t.Fatal(err)
		}
		if want := seg.qemuArgs(i); fmt.Sprint(args) != fmt.Sprint(want) {
			t.Errorf("guest %d args changed across a restart: %v -> %v", i, want, args)
		}
	}
	f := frame(broadcastMAC, g[0].mac, 0x8137, make([]byte, 46))
	g[0].send(f)
	if got := g[1].drain(quiet, st); containsFrame(got, f) != 1 {
		t.Fatalf("after the restart the frame did not arrive (%d frames)", len(got))
	}
	// And a guest whose QEMU restarted (a new socket at its path) is
	// found again.
	g[1].reopen()
	f2 := frame(broadcastMAC, g[0].mac, 0x8137, bytes.Repeat([]byte{2}, 46))
	g[0].send(f2)
	if got := g[1].drain(quiet, st); containsFrame(got, f2) != 1 {
		t.Fatalf("a restarted guest did not get the frame (%d frames)", len(got))
	}
}

// TestLiveSocketsAreNotStolen: `loco plan` next to a running cluster must
// leave the running switch alone, and take over only once it is gone.
func TestLiveSocketsAreNotStolen(t *testing.T) {
	cl := testCluster(t, 2)
	seg, g := startLANIn(t, cl, defaultRaw())
	st := seg.sw.stationMAC
	cfg, _ := ParseConfig(defaultRaw(), 2)
	other, err := NewSegment(hclog.NewNullLogger(), cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Attach(0); err != nil {
		t.Fatalf("attach next to a live switch should still give args: %v", err)
	}
	f := frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46))
	g[1].send(f)
	if got := g[0].drain(quiet, st); containsFrame(got, f) != 1 {
		t.Fatal("the running switch lost its port to a second one")
	}
	other.Attach(1)
	seg.Close()
	f2 := frame(broadcastMAC, g[1].mac, 0x0800, bytes.Repeat([]byte{3}, 46))
	waitFor(t, "the second switch to take over", 10*time.Second, func() bool {
		g[1].trySend(f2)
		return containsFrame(g[0].drain(quiet, other.sw.stationMAC), f2) > 0
	})
}

// TestForeignSenderIsDropped: only the guest's own socket may feed its port.
func TestForeignSenderIsDropped(t *testing.T) {
	seg, g := startLAN(t, 2, defaultRaw())
	path := seg.paths[0].guest + ".intruder"
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer c.Close()
	c.WriteToUnix(frame(broadcastMAC, g[0].mac, 0x0800, make([]byte, 46)), &net.UnixAddr{Name: seg.paths[0].sw, Net: "unixgram"})
	waitFor(t, "the foreign drop", 5*time.Second, func() bool { return seg.sw.Drops()["foreign_sender"] == 1 })
	if got := g[1].drain(quiet, seg.sw.stationMAC); len(got) != 0 {
		t.Errorf("a foreign frame was forwarded")
	}
}

// TestCaptureSeesFramesFromAndToAnInstance checks the capture filter.
func TestCaptureSeesFramesFromAndToAnInstance(t *testing.T) {
	seg, g := startLAN(t, 3, defaultRaw())
	all, stopAll := seg.sw.subscribe(sdk.CaptureRequest{})
	defer stopAll()
	one, stopOne := seg.sw.subscribe(sdk.CaptureRequest{Instances: []uint32{2}, Snaplen: 20})
	defer stopOne()
	g[1].send(frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46))) // learn guest 1
	g[0].send(frame(g[1].mac, g[0].mac, 0x0800, make([]byte, 46)))     // 0 -> 1: not guest 2's
	g[2].send(frame(g[0].mac, g[2].mac, 0x8137, make([]byte, 46)))     // 2 -> 0
	read := func(tp *tap) []sdk.CapturedFrame {
		var out []sdk.CapturedFrame
		for {
			select {
			case f := <-tp.ch:
				if !f.FromHost {
					out = append(out, f)
				}
			case <-time.After(quiet):
				return out
			}
		}
	}
	if got := read(all); len(got) != 3 {
		t.Errorf("full capture got %d guest frames, want 3", len(got))
	}
	got := read(one)
	if len(got) != 2 {
		t.Fatalf("capture of instance 2 got %d guest frames, want the broadcast and its own", len(got))
	}
	// Frames from different guests are forwarded concurrently: their order
	// in the capture is not the order they were sent in.
	own := 0
	for _, f := range got {
		if len(f.Data) != 20 || f.Length != 60 {
			t.Errorf("frame from %d: %d bytes of %d, want 20 of 60", f.Ingress, len(f.Data), f.Length)
		}
		if f.Ingress == 2 {
			own++
		}
	}
	if own != 1 {
		t.Errorf("%d frames from instance 2, want 1", own)
	}
}
