package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv/locorun"
)

// vxHost is one loco host of the VXLAN e2e: its own spec and state dir.
type vxHost struct {
	e    *e2e
	cl   string
	spec string
	g    *lanGuests
	ips  []string
	macs []string
}

// freeUDP is an unused UDP port on ip.
func freeUDP(t testing.TB, ip string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestLANVXLAN runs two loco clusters on this machine, each with its own
// spec and state dir and a VTEP on its own loopback address, as two hosts
// of one LAN: every guest pings every guest across the tunnel, DHCP (each
// host's station serves its own guests from its own range) gives no
// duplicate, raw IPX broadcasts arrive once on the far side, LAN status
// shows the peer, and a SIGKILLed plugin on one side costs the guests a
// short outage and no restart.
func TestLANVXLAN(t *testing.T) {
	// vxa's VTEP is on the host end of a veth pair into a namespace with
	// the kernel's VTEP (the kernel drops datagrams to 127/8 arriving on a
	// veth); vxb's is on 127.0.0.2.
	kernelNS, addrA, kernelAddr := kernelVTEP(t)
	addrB := freeUDP(t, "127.0.0.2")
	hosts := []*vxHost{{e: newE2E(t), cl: "vxa", ips: []string{"10.87.0.10", "10.87.0.11"}},
		{e: newE2E(t), cl: "vxb", ips: []string{"10.87.0.20", "10.87.0.21"}}}
	blocks := []string{
		fmt.Sprintf("  network \"vxlan\" {\n    vni = 4242\n    listen = %q\n    peers = [%q, %q]\n    host_ip = \"10.87.0.1\"\n    first_lease = 10\n  }\n", addrA, addrB, kernelAddr),
		fmt.Sprintf("  network \"vxlan\" {\n    vni = 4242\n    listen = %q\n    peers = [%q]\n    host_ip = \"10.87.0.2\"\n    first_lease = 20\n  }\n", addrB, addrA),
	}
	for i, h := range hosts {
		h.spec = h.e.Spec(h.cl, 2, blocks[i])
		h.g = &lanGuests{e: h.e, cluster: h.cl, mu: make([]sync.Mutex, 2)}
		t.Cleanup(func() { h.e.Run("stop", "--grace", "0s", "--destroy", h.spec) })
	}
	boot := time.Now()
	for _, h := range hosts {
		h.e.MustRun("run", "--detach", h.spec)
	}
	dhcpRe := regexp.MustCompile(`LOCO-DHCP name=\S+ ip=(\S+)`)
	leased := map[string]string{}
	for _, h := range hosts {
		for i := range h.ips {
			h.e.WaitReady(h.cl, i, 1)
			got := h.e.waitSerial(t, h.cl, i, dhcpRe, 1)[1]
			if other, dup := leased[got]; dup {
				t.Fatalf("%s-%d and %s both leased %s", h.cl, i, other, got)
			}
			leased[got] = fmt.Sprintf("%s-%d", h.cl, i)
			if got != h.ips[i] {
				t.Fatalf("%s-%d leased %s, want %s", h.cl, i, got, h.ips[i])
			}
			h.macs = append(h.macs, strings.TrimPrefix(strings.Fields(h.g.must(t, i, "info"))[1], "mac="))
		}
	}
	t.Logf("2x2 guests booted and leased in %s: %v", time.Since(boot).Round(time.Millisecond), leased)
	// The kernel's VTEP talks only when something pings through it; a
	// steady ping to vxa's station keeps that peer live, like a host with
	// traffic.
	keep := exec.Command("ip", "netns", "exec", kernelNS, "ping", "-q", "-i", "0.5", "10.87.0.1")
	if err := keep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Process.Kill(); keep.Wait() })
	stA := hosts[0].e.Status(hosts[0].spec)
	stB := hosts[1].e.Status(hosts[1].spec)

	// everyPing pings every guest from every other across both hosts.
	everyPing := func(count int, timeout time.Duration) error {
		var all []string
		for _, h := range hosts {
			all = append(all, h.ips...)
		}
		errs := make(chan error, 4)
		for _, h := range hosts {
			for i, own := range h.ips {
				go func() {
					for _, dst := range all {
						if dst != own {
							if err := h.g.ping(i, dst, count, timeout); err != nil {
								errs <- fmt.Errorf("%s: %w", h.cl, err)
								return
							}
						}
					}
					errs <- nil
				}()
			}
		}
		var first error
		for range 4 {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}

	t.Run("every guest pings every guest across the tunnel", func(t *testing.T) {
		if err := everyPing(3, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a raw IPX broadcast reaches the other host's guests exactly once", func(t *testing.T) {
		for _, h := range hosts {
			for i := range h.ips {
				h.g.must(t, i, "raw-listen")
			}
		}
		text := fmt.Sprintf("vx-ipx-%d", time.Now().UnixNano())
		hosts[0].g.must(t, 0, "raw-send 0x8137 broadcast "+text)
		want := hosts[0].macs[0] + "=" + text
		for _, x := range []struct {
			h *vxHost
			i int
		}{{hosts[0], 1}, {hosts[1], 0}, {hosts[1], 1}} {
			waitCount(t, fmt.Sprintf("%s-%d to get the IPX broadcast", x.h.cl, x.i),
				func() int { return strings.Count(x.h.g.must(t, x.i, "raw-recv 0x8137"), want) }, 1)
		}
		time.Sleep(time.Second) // time for a duplicate to show up
		for i := range hosts[1].ips {
			if n := strings.Count(hosts[1].g.must(t, i, "raw-recv 0x8137"), want); n != 1 {
				t.Errorf("vxb-%d got the broadcast %d times", i, n)
			}
		}
	})

	t.Run("a UDP broadcast and a NetBEUI frame reach the other host's guests exactly once", func(t *testing.T) {
		for _, h := range hosts {
			for i := range h.ips {
				h.g.must(t, i, "udp-listen 5999")
			}
		}
		text := fmt.Sprintf("vx-bcast-%d", time.Now().UnixNano())
		hosts[0].g.must(t, 0, "udp-send 255.255.255.255 5999 "+text)
		nb := fmt.Sprintf("vx-netbeui-%d", time.Now().UnixNano())
		hosts[0].g.must(t, 0, "raw-send llc:f0 broadcast "+nb)
		for i := range hosts[1].ips {
			waitCount(t, fmt.Sprintf("vxb-%d to get the UDP broadcast", i),
				func() int { return strings.Count(hosts[1].g.must(t, i, "udp-recv 5999"), hosts[0].ips[0]+"="+text) }, 1)
			waitCount(t, fmt.Sprintf("vxb-%d to get the NetBEUI frame", i),
				func() int { return strings.Count(hosts[1].g.must(t, i, "raw-recv 802.3"), hosts[0].macs[0]+"="+nb) }, 1)
		}
		time.Sleep(time.Second)
		for i := range hosts[1].ips {
			if n := strings.Count(hosts[1].g.must(t, i, "udp-recv 5999"), hosts[0].ips[0]+"="+text); n != 1 {
				t.Errorf("vxb-%d got the UDP broadcast %d times", i, n)
			}
			if n := strings.Count(hosts[1].g.must(t, i, "raw-recv 802.3"), hosts[0].macs[0]+"="+nb); n != 1 {
				t.Errorf("vxb-%d got the NetBEUI frame %d times", i, n)
			}
		}
	})

	t.Run("the Linux kernel's vxlan pings a guest, and a guest pings it", func(t *testing.T) {
		out, err := exec.Command("ip", "netns", "exec", kernelNS, "ping", "-c", "3", "-W", "3", hosts[0].ips[0]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "3 received") {
			t.Fatalf("kernel vx0 -> %s: %v\n%s", hosts[0].ips[0], err, out)
		}
		if err := hosts[0].g.ping(1, "10.87.0.200", 3, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LAN status shows the peers with the far guests behind them", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			lan := hosts[0].e.lanStatus(t, hosts[0].cl)
			ok := lan.Healthy && len(lan.Uplinks) == 2 && lan.Uplinks[0].Reachable && lan.Uplinks[0].RTTMillis > 0 && lan.Uplinks[1].Reachable
			if ok {
				u := lan.Uplinks[0]
				for _, m := range hosts[1].macs {
					if !strings.Contains(strings.Join(u.MACs, ","), m) {
						t.Errorf("peer %s: no %s behind it: %v", u.Address, m, u.MACs)
					}
				}
				if u.Address != addrB || u.RxFrames == 0 || u.TxFrames == 0 {
					t.Errorf("peer: %+v", u)
				}
				if k := lan.Uplinks[1]; k.Address != kernelAddr || len(k.MACs) == 0 || k.RxFrames == 0 {
					t.Errorf("the kernel's peer: %+v", k)
				}
				t.Logf("vxa's peers: %+v; summary %q; drops %v", lan.Uplinks, lan.Summary, lan.Drops)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("LAN status of vxa: %+v", lan)
			}
			time.Sleep(500 * time.Millisecond)
		}
		out := hosts[0].e.MustRun("lan", "status", hosts[0].spec)
		if !strings.Contains(out, "2/2 guests reachable; 2/2 VXLAN peers reachable") || !regexp.MustCompile(regexp.QuoteMeta(addrB)+` +yes +[0-9.]+ms`).MatchString(out) {
			t.Errorf("loco lan status:\n%s", out)
		}
		t.Logf("loco lan status:\n%s", out)
	})

	t.Run("a peer that stops and comes back: unreachable, then pings again", func(t *testing.T) {
		plugin := childOf(stB.LocoPID, "loco-plugin-network-vxlan")
		if plugin == 0 {
			t.Fatalf("no network plugin under vxb's loco (pid %d)", stB.LocoPID)
		}
		if err := syscall.Kill(plugin, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		defer syscall.Kill(plugin, syscall.SIGCONT)
		for hosts[0].e.lanStatus(t, hosts[0].cl).Uplinks[0].Reachable {
			if time.Since(stopped) > time.Minute {
				t.Fatal("vxb's VTEP still reachable a minute after SIGSTOP")
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("vxa saw vxb unreachable %s after its plugin stopped", time.Since(stopped).Round(time.Millisecond))
		if lan := hosts[0].e.lanStatus(t, hosts[0].cl); lan.Healthy || !strings.Contains(lan.Summary, "1/2 VXLAN peers reachable") {
			t.Errorf("with vxb away: healthy %v, %q", lan.Healthy, lan.Summary)
		}
		syscall.Kill(plugin, syscall.SIGCONT)
		resumed := time.Now()
		var err error
		for time.Since(resumed) < 2*time.Minute {
			if err = everyPing(1, time.Second); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("no ping two minutes after vxb came back: %v", err)
		}
		t.Logf("every pair pings again %s after vxb's plugin resumed", time.Since(resumed).Round(time.Millisecond))
	})

	t.Run("SIGKILL of one side's plugin: pings resume, no guest restarted", func(t *testing.T) {
		plugin := childOf(stA.LocoPID, "loco-plugin-network-vxlan")
		if plugin == 0 {
			t.Fatalf("no network plugin under loco (pid %d)", stA.LocoPID)
		}
		if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		var err error
		for time.Since(killed) < 2*time.Minute {
			if err = everyPing(1, time.Second); err == nil {
				break
			}
		}
		took := time.Since(killed)
		t.Logf("every pair across the tunnel pings again %s after the SIGKILL", took.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("no ping two minutes after the kill: %v", err)
		}
		if took > 20*time.Second {
			t.Errorf("took %s, want within 20s", took)
		}
		if p := childOf(stA.LocoPID, "loco-plugin-network-vxlan"); p == 0 || p == plugin {
			t.Errorf("plugin pid %d after the kill (was %d)", p, plugin)
		}
		for k, h := range hosts {
			before := []locorun.Status{stA, stB}[k]
			for i, gs := range h.e.Status(h.spec).Guests {
				if gs.PID != before.Guests[i].PID || h.e.ReadyCount(h.cl, i) != 1 {
					t.Errorf("%s-%d restarted: pid %d -> %d, ready %d", h.cl, i, before.Guests[i].PID, gs.PID, h.e.ReadyCount(h.cl, i))
				}
			}
		}
	})
}

// kernelVTEP makes a network namespace joined to the host by a veth pair,
// with the Linux kernel's vxlan device in it (VNI 4242, address
// 10.87.0.200) whose remote is a free port on the host end: vxa's VTEP. It
// returns the namespace, vxa's address and the kernel VTEP's (a peer of
// vxa).
func kernelVTEP(t testing.TB) (ns, addrA, kernel string) {
	t.Helper()
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install iproute2 iputils-ping; make deps does)", tool)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pid := os.Getpid()
	ns, vh, vn := fmt.Sprintf("lvxe%d", pid), fmt.Sprintf("lvxeh%d", pid), fmt.Sprintf("lvxen%d", pid)
	hostSide, nsSide := fmt.Sprintf("10.252.%d.1", pid%250), fmt.Sprintf("10.252.%d.2", pid%250)
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "link", "add", vh, "type", "veth", "peer", "name", vn)
	t.Cleanup(func() { exec.Command("ip", "link", "del", vh).Run() })
	run("ip", "link", "set", vn, "netns", ns)
	run("ip", "addr", "add", hostSide+"/30", "dev", vh)
	run("ip", "link", "set", vh, "up")
	in := func(args ...string) { t.Helper(); run(append([]string{"ip", "netns", "exec", ns}, args...)...) }
	in("ip", "addr", "add", nsSide+"/30", "dev", vn)
	in("ip", "link", "set", vn, "up")
	addrA = freeUDP(t, hostSide)
	_, port, _ := net.SplitHostPort(addrA)
	in("ip", "link", "add", "vx0", "type", "vxlan", "id", "4242", "dstport", port, "remote", hostSide, "local", nsSide, "dev", vn)
	in("ip", "addr", "add", "10.87.0.200/24", "dev", "vx0")
	in("ip", "link", "set", "vx0", "up")
	return ns, addrA, nsSide + ":" + port
}
