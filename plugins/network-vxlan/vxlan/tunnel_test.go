package vxlan

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

const quiet = 300 * time.Millisecond

// threeHosts is a segment over three hosts on loopback, each peering with
// the other two, with 2, 2 and 1 guests; a fourth configured peer address
// is left to the test to send from.
func threeHosts(t *testing.T) (a, b, c *host, spare netip.AddrPort) {
	addrs := []netip.AddrPort{freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.2"), freeAddr(t, "127.0.0.3")}
	spare = freeAddr(t, "127.0.0.5")
	hosts := make([]*host, 3)
	for i, n := range []int{2, 2, 1} {
		var peers []netip.AddrPort
		for j, p := range addrs {
			if j != i {
				peers = append(peers, p)
			}
		}
		peers = append(peers, spare)
		hosts[i] = startHost(t, string(rune('a'+i)), n, map[string]cty.Value{
			"listen": cty.StringVal(addrs[i].String()), "peers": peersVal(peers...),
			"host_ip": cty.StringVal("10.87.0." + string(rune('1'+i))), "first_lease": cty.NumberIntVal(int64(10 * (i + 1))),
		})
	}
	return hosts[0], hosts[1], hosts[2], spare
}

func TestSegmentSpansThreeHosts(t *testing.T) {
	a, b, c, spare := threeHosts(t)
	all := append(append(append([]*guest{}, a.guests...), b.guests...), c.guests...)
	bcastMAC := mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

	t.Run("a broadcast reaches every other guest on every host exactly once", func(t *testing.T) {
		f := frame(bcastMAC, a.guests[0].mac, 0x8137, bytes.Repeat([]byte{1}, 46))
		a.guests[0].send(f)
		for i, g := range all[1:] {
			if n := count(g.frames(quiet, 0x8137), f); n != 1 {
				t.Errorf("guest %d got the broadcast %d times", i+1, n)
			}
		}
		if n := count(a.guests[0].frames(quiet, 0x8137), f); n != 0 {
			t.Errorf("the sender got its broadcast back %d times", n)
		}
	})

	t.Run("unicast to a learned remote MAC goes to its host alone", func(t *testing.T) {
		// Every guest speaks first, so every switch and tunnel knows where
		// everyone is and the station's probes to its own guests stop
		// flooding as unknown unicast.
		for _, g := range all {
			g.send(frame(bcastMAC, g.mac, 0x8137, []byte("hello.........................................")))
		}
		for _, g := range all {
			g.frames(quiet, 0x8137)
		}
		txC := a.p.tun.peers[1].txFrames.Load()
		u := frame(b.guests[1].mac, a.guests[0].mac, 0x8137, []byte("to b1 only...................................."))
		a.guests[0].send(u)
		if n := count(b.guests[1].frames(quiet, 0x8137), u); n != 1 {
			t.Fatalf("b1 got the unicast %d times", n)
		}
		for i, g := range []*guest{a.guests[1], b.guests[0], c.guests[0]} {
			if n := count(g.frames(quiet, 0x8137), u); n != 0 {
				t.Errorf("bystander %d got a learned unicast", i)
			}
		}
		if got := a.p.tun.peers[1].txFrames.Load(); got != txC {
			t.Errorf("a sent %d frames to c for a unicast behind b", got-txC)
		}
	})

	t.Run("status shows the peers, what crossed and who is behind them", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, _ := a.p.Status(t.Context())
			ok := len(st.Uplinks) == 3 && st.Uplinks[0].Reachable && st.Uplinks[1].Reachable && !st.Uplinks[2].Reachable &&
				st.Uplinks[0].RTTMillis > 0
			if ok {
				b := st.Uplinks[0]
				if !containsStr(b.MACs, all[3].mac.String()) || b.TxFrames == 0 || b.RxFrames == 0 {
					t.Errorf("peer b: %+v", b)
				}
				if st.Healthy || !strings.Contains(st.Summary, "2/3 VXLAN peers reachable") {
					t.Errorf("with a silent peer: healthy=%v %q", st.Healthy, st.Summary)
				}
				t.Logf("a's peers: %+v; summary %q", st.Uplinks, st.Summary)
				checkUplinkMetrics(t, a.p, st.Uplinks[0].Address)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status: %+v", st.Uplinks)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("bad datagrams are dropped and counted by reason", func(t *testing.T) {
		good := encap(defaultVNI, frame(bcastMAC, mac{0x52, 0x77, 0, 0, 0, 1}, 0x8137, make([]byte, 46)))
		stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.9")})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(spare))
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		to := net.UDPAddrFromAddrPort(a.p.tun.LocalAddr())
		stranger.WriteToUDP(good, to)
		peer.WriteToUDP(good[:5], to)
		noI := append([]byte{0}, good[1:]...)
		peer.WriteToUDP(noI, to)
		peer.WriteToUDP(encap(defaultVNI+1, good[8:]), to)
		peer.WriteToUDP(good[:8+6], to)
		local := encap(defaultVNI, frame(bcastMAC, a.guests[1].mac, 0x8137, make([]byte, 46)))
		peer.WriteToUDP(local, to)
		want := map[string]uint64{"vxlan_unknown_peer": 1, "vxlan_short_header": 1, "vxlan_no_i_flag": 1,
			"vxlan_wrong_vni": 1, "vxlan_inner_runt": 1, "vxlan_mac_conflict": 1}
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, _ := a.p.Status(t.Context())
			ok := true
			for k, v := range want {
				ok = ok && st.Drops[k] == v
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("drops %v, want %v", st.Drops, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i, g := range a.guests {
			if got := g.frames(quiet, 0x8137); len(got) != 0 {
				t.Errorf("guest a%d got %d frames from bad datagrams", i, len(got))
			}
		}
	})

	t.Run("a frame too big for the underlay is dropped and counted, not fragmented", func(t *testing.T) {
		big := frame(bcastMAC, a.guests[0].mac, 0x8137, make([]byte, 1500-14)) // 1500 bytes: needs 1536 of underlay
		fits := frame(bcastMAC, a.guests[0].mac, 0x8137, make([]byte, 1464-14))
		a.guests[0].send(big)
		a.guests[0].send(fits)
		got := b.guests[0].frames(quiet, 0x8137)
		if count(got, big) != 0 || count(got, fits) != 1 {
			t.Errorf("b0 got big %d, fitting %d", count(got, big), count(got, fits))
		}
		if n := a.guests[1].frames(quiet, 0x8137); count(n, big) != 1 {
			t.Error("the big frame did not reach the local guest")
		}
		if st, _ := a.p.Status(t.Context()); st.Drops["vxlan_too_big"] != 1 {
			t.Errorf("drops: %v", st.Drops)
		}
	})
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkUplinkMetrics: the peers reach /metrics as uplinks beside the
// segment's own series.
func checkUplinkMetrics(t *testing.T, p *Plugin, reachable string) {
	seen := false
	t.Helper()
	fams, err := p.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range fams {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
		found[f.Name] = true
		if f.Name == "loco_lan_uplink_reachable" {
			for _, s := range f.Samples {
				if s.LabelValues[1] == reachable && s.Value != 1 {
					t.Errorf("uplink %s reachable = %v", reachable, s.Value)
				}
				seen = seen || s.LabelValues[1] == reachable
			}
		}
	}
	if !seen {
		t.Errorf("no reachability series for peer %s", reachable)
	}
	for _, n := range []string{"loco_lan_frames_total", "loco_lan_rtt_seconds", "loco_lan_uplink_frames_total", "loco_lan_uplink_rtt_seconds"} {
		if !found[n] {
			t.Errorf("no %s", n)
		}
	}
}
