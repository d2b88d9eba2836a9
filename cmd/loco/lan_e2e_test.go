package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/sdk"
)

// lanGuests drives the test agents of a running cluster's guests. Commands
// to different guests may run at once; those to one guest take turns, as
// its serial port carries one conversation.
type lanGuests struct {
	e       *e2e
	cluster string
	mu      []sync.Mutex
}

// cmd sends one command and returns the agent's reply line. It first
// syncs with "echo" as the agent's README asks, so a reply left over from
// an earlier, interrupted conversation is never taken for this one's.
func (g *lanGuests) cmd(i int, command string) (string, error) {
	g.mu[i].Lock()
	defer g.mu[i].Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		reply, err := testenv.AskAgent(filepath.Join(g.e.GuestDir(g.cluster, i), "console.sock"), command, 60*time.Second)
		if err == nil {
			return reply, nil
		}
		lastErr = err
		time.Sleep(500 * time.Millisecond)
	}
	return "", fmt.Errorf("agent of %s-%d, %q: %w", g.cluster, i, command, lastErr)
}

// must is cmd for the test goroutine: any failure or ERR reply fails it.
func (g *lanGuests) must(t testing.TB, i int, command string) string {
	t.Helper()
	r, err := g.cmd(i, command)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r, "OK") {
		t.Fatalf("guest %d: %s -> %s", i, command, r)
	}
	return strings.TrimPrefix(strings.TrimPrefix(r, "OK"), " ")
}

// each runs f for every guest at once and fails the test with every error.
func each(t testing.TB, n int, f func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

var pingRe = regexp.MustCompile(`sent=(\d+) recv=(\d+) from=(\S*)`)

// ping pings dst from guest i; it succeeds when every echo came back.
func (g *lanGuests) ping(i int, dst string, count int, timeout time.Duration) error {
	r, err := g.cmd(i, fmt.Sprintf("icmp-ping %s %d %d", dst, count, timeout.Milliseconds()))
	if err != nil {
		return err
	}
	m := pingRe.FindStringSubmatch(r)
	if m == nil || m[1] != m[2] {
		return fmt.Errorf("guest %d ping %s: %s", i, dst, r)
	}
	return nil
}

// allPairsPing pings every guest from every other, all guests at once.
func (g *lanGuests) allPairsPing(ips []string, count int, timeout time.Duration) error {
	errs := make(chan error, len(ips))
	for i := range ips {
		go func() {
			for j := range ips {
				if j != i {
					if err := g.ping(i, ips[j], count, timeout); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range ips {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// lanStatus asks the running loco's API, as `loco lan status --json` does.
func (e *e2e) lanStatus(t testing.TB, cl string) sdk.LANStatus {
	t.Helper()
	st, err := e.API(t, cl).LANStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitSerial waits until guest i's serial log holds want lines matching re
// and returns the last match.
func (e *e2e) waitSerial(t testing.TB, cl string, i int, re *regexp.Regexp, want int) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(e.GuestDir(cl, i), "serial.log"))
		all := re.FindAllStringSubmatch(string(b), -1)
		if len(all) >= want {
			return all[len(all)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest %d: %d lines match %s, want %d; serial log:\n%s", i, len(all), re, want, b)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// childOf finds the process whose parent is ppid and whose name starts
// with comm (the kernel keeps 15 characters of it).
func childOf(ppid int, comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) && strings.HasPrefix(comm, s[open+1:close]) {
			return pid
		}
	}
	return 0
}

// TestLANSocket boots three test guests on the socket plugin's LAN (one
// boot for the whole walk) and proves from inside the guests what LAN games
// need: ping between every pair, broadcasts that reach every other guest
// exactly once, raw IPX and NetBEUI frames, DirectPlay's TCP and UDP ports,
// DHCP addresses that survive restarts (of the switch, of a guest, of the
// whole cluster); then LAN status, capture, a SIGKILLed switch and a
// frozen guest.
func TestLANSocket(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump is needed to read the capture back: apt-get install tcpdump (make deps does)")
	}
	e := newE2E(t)
	const cl = "lan"
	spec := e.Spec(cl, 3, "  network \"socket\" {}\n")
	t.Cleanup(func() { e.Run("stop", "--grace", "0s", "--destroy", spec) })
	g := &lanGuests{e: e, cluster: cl, mu: make([]sync.Mutex, 3)}
	ips := []string{"10.87.0.10", "10.87.0.11", "10.87.0.12"}

	boot := time.Now()
	e.MustRun("run", "--detach", spec)
	dhcpRe := regexp.MustCompile(`LOCO-DHCP name=\S+ ip=(\S+)`)
	for i := range ips {
		e.WaitReady(cl, i, 1)
		if got := e.waitSerial(t, cl, i, dhcpRe, 1)[1]; got != ips[i] {
			t.Fatalf("guest %d leased %s, want %s", i, got, ips[i])
		}
	}
	t.Logf("3 guests booted and leased in %s", time.Since(boot).Round(time.Millisecond))

	st := e.Status(spec)
	macs := make([]string, 3)
	for i := range macs {
		macs[i] = strings.TrimPrefix(strings.Fields(g.must(t, i, "info"))[1], "mac=")
	}
	each(t, 3, func(i int) error {
		for _, c := range []string{"raw-listen", "udp-listen 2300", "udp-listen 47624", "udp-listen 5999", "tcp-listen 2300", "tcp-listen 47624"} {
			if r, err := g.cmd(i, c); err != nil || !strings.HasPrefix(r, "OK") {
				return fmt.Errorf("guest %d %s: %s %v", i, c, r, err)
			}
		}
		if r, _ := g.cmd(i, "info"); !strings.HasSuffix(r, "ip="+ips[i]) {
			return fmt.Errorf("guest %d info: %s, want ip=%s", i, r, ips[i])
		}
		return nil
	})

	// A capture runs through the traffic tests below.
	capFile := filepath.Join(e.Dir, "lan.pcap")
	capture := exec.Command(e.Bin, "lan", "capture", spec, "-w", capFile)
	capture.Env = append(os.Environ(), "LOCO_STATE_DIR="+e.StateDir)
	var capErr strings.Builder
	capture.Stderr = &capErr
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capture.Process.Kill(); capture.Wait() })
	time.Sleep(500 * time.Millisecond)

	t.Run("every guest pings every other", func(t *testing.T) {
		if err := g.allPairsPing(ips, 3, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UDP broadcast reaches every other guest exactly once", func(t *testing.T) {
		text := fmt.Sprintf("bcast-%d", time.Now().UnixNano())
		g.must(t, 0, "udp-send 255.255.255.255 5999 "+text)
		for i := 1; i < 3; i++ {
			waitCount(t, fmt.Sprintf("guest %d to get the broadcast", i), func() int { return strings.Count(g.must(t, i, "udp-recv 5999"), "="+text) }, 1)
		}
		time.Sleep(time.Second) // time for a duplicate to show up
		for i := 0; i < 3; i++ {
			r := g.must(t, i, "udp-recv 5999")
			want := 1 // guest 0 hears its own broadcast once, through its loopback
			if n := strings.Count(r, ips[0]+"="+text); n != want {
				t.Errorf("guest %d got the broadcast %d times: %s", i, n, r)
			}
		}
	})

	t.Run("broadcast ping reaches every other guest exactly once", func(t *testing.T) {
		before := make([]int, 3)
		for i := range before {
			before[i] = statInt(t, g.must(t, i, "raw-stats"), "bcast_echo_requests")
		}
		r := g.must(t, 0, "icmp-ping 255.255.255.255 1 3000")
		for _, ip := range ips[1:] {
			if !strings.Contains(r, ip+":1") {
				t.Errorf("no single reply from %s: %s", ip, r)
			}
		}
		for i := 1; i < 3; i++ {
			if got := statInt(t, g.must(t, i, "raw-stats"), "bcast_echo_requests") - before[i]; got != 1 {
				t.Errorf("guest %d received the broadcast echo request %d times", i, got)
			}
		}
		if got := statInt(t, g.must(t, 0, "raw-stats"), "bcast_echo_requests") - before[0]; got != 0 {
			t.Errorf("the sender got its own broadcast back %d times", got)
		}
	})

	t.Run("raw frames of any type reach the other guests", func(t *testing.T) {
		cases := []struct {
			name, send, recv string
		}{
			{"IPX, EtherType 0x8137", "0x8137", "0x8137"},
			{"IPX on raw 802.3", "802.3", "802.3"},
			{"NetBEUI on 802.2 LLC", "llc:f0", "802.3"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				text := fmt.Sprintf("frame-%d", time.Now().UnixNano())
				g.must(t, 0, fmt.Sprintf("raw-send %s broadcast %s", tc.send, text))
				for i := 1; i < 3; i++ {
					waitCount(t, fmt.Sprintf("guest %d to get the frame", i), func() int { return strings.Count(g.must(t, i, "raw-recv "+tc.recv), macs[0]+"="+text) }, 1)
				}
			})
		}
		t.Run("unicast IPX reaches only its destination", func(t *testing.T) {
			text := fmt.Sprintf("unicast-%d", time.Now().UnixNano())
			g.must(t, 0, fmt.Sprintf("raw-send 0x8137 %s %s", macs[2], text))
			waitCount(t, "guest 2 to get the frame", func() int { return strings.Count(g.must(t, 2, "raw-recv 0x8137"), "="+text) }, 1)
			time.Sleep(500 * time.Millisecond)
			if r := g.must(t, 1, "raw-recv 0x8137"); strings.Contains(r, text) {
				t.Errorf("a learned unicast reached a third guest: %s", r)
			}
		})
	})

	t.Run("DirectPlay ports connect across every pair", func(t *testing.T) {
		each(t, 3, func(a int) error {
			for b := range ips {
				if a == b {
					continue
				}
				for _, port := range []int{2300, 47624} {
					want := fmt.Sprintf("%s-%d got from-%d", cl, b, a)
					if r, err := g.cmd(a, fmt.Sprintf("tcp-connect %s %d from-%d", ips[b], port, a)); err != nil || r != "OK "+want {
						return fmt.Errorf("TCP %d -> %d port %d: %q %v", a, b, port, r, err)
					}
					if r, err := g.cmd(a, fmt.Sprintf("udp-send %s %d dp-%d-%d-%d", ips[b], port, a, b, port)); err != nil || !strings.HasPrefix(r, "OK") {
						return fmt.Errorf("UDP %d -> %d port %d: %q %v", a, b, port, r, err)
					}
				}
			}
			return nil
		})
		for b := range ips {
			for a := range ips {
				for _, port := range []int{2300, 47624} {
					if a == b {
						continue
					}
					text := fmt.Sprintf("%s=dp-%d-%d-%d", ips[a], a, b, port)
					waitCount(t, fmt.Sprintf("UDP %d -> %d port %d", a, b, port), func() int { return strings.Count(g.must(t, b, fmt.Sprintf("udp-recv %d", port)), text) }, 1)
				}
			}
		}
	})

	t.Run("capture holds the ARP and ICMP frames", func(t *testing.T) {
		capture.Process.Signal(os.Interrupt)
		if err := capture.Wait(); err != nil {
			t.Fatalf("loco lan capture: %v\n%s", err, capErr.String())
		}
		out, err := exec.Command("tcpdump", "-nn", "-e", "-r", capFile).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"ethertype ARP (0x0806)", // Guests may have resolved each other before the capture began; the
			// switch's prober asks for every guest each probe interval.
			"Request who-has " + ips[1] + " tell ", ips[1] + " is-at " + macs[1],
			ips[0] + " > " + ips[1] + ": ICMP echo request", ips[1] + " > " + ips[0] + ": ICMP echo reply",
			ips[0] + " > 255.255.255.255: ICMP echo request", "ethertype IPX (0x8137)", "802.3"} {
			if !strings.Contains(s, want) {
				t.Errorf("the capture has no %q", want)
			}
		}
		t.Logf("capture: %s, %d frames", strings.TrimSpace(capErr.String()), strings.Count(s, "\n"))
	})

	t.Run("LAN status shows every guest reachable with an RTT", func(t *testing.T) {
		var lan sdk.LANStatus
		deadline := time.Now().Add(30 * time.Second)
		for {
			lan = e.lanStatus(t, cl)
			ok := lan.Healthy && len(lan.Ports) == 3
			for _, p := range lan.Ports {
				ok = ok && p.Reachable && p.LinkUp && p.RTTMillis > 0
			}
			if ok || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if !lan.Healthy || lan.Summary != "3/3 guests reachable" {
			t.Fatalf("LAN status: %+v", lan)
		}
		pairs := map[[2]uint32]bool{}
		for _, l := range lan.Links {
			if l.Frames > 0 {
				pairs[[2]uint32{l.From, l.To}] = true
			}
		}
		for i, p := range lan.Ports {
			t.Logf("%s: ip %v rtt %.2fms rx %d tx %d drops %d by type %v", p.Name, p.IPs, p.RTTMillis, p.RxFrames, p.TxFrames, p.Drops, p.FramesByEtherType)
			if len(p.IPs) == 0 || p.IPs[0] != ips[i] || p.MAC != macs[i] || p.FramesByEtherType["IPX"] == 0 {
				t.Errorf("port %d: %+v", i, p)
			}
			for j := range lan.Ports {
				if i != j && !pairs[[2]uint32{uint32(i), uint32(j)}] {
					t.Errorf("no unicast traffic from %d to %d in the matrix: %+v", i, j, lan.Links)
				}
			}
		}
		out := e.MustRun("lan", "status", spec)
		if !strings.Contains(out, "LAN healthy: 3/3 guests reachable") {
			t.Errorf("loco lan status:\n%s", out)
		}
		for i := range ips {
			if !regexp.MustCompile(fmt.Sprintf(`(?m)^%s-%d +\S+ +%s +up +yes +[0-9.]+ms `, cl, i, regexp.QuoteMeta(ips[i]))).MatchString(out) {
				t.Errorf("loco lan status has no reachable row with an RTT for guest %d:\n%s", i, out)
			}
		}
		t.Logf("loco lan status:\n%s", out)
	})

	t.Run("no guest ever got its own frames back", func(t *testing.T) {
		for i := range ips {
			if n := statInt(t, g.must(t, i, "raw-stats"), "self_echoes"); n != 0 {
				t.Errorf("guest %d saw %d of its own frames come back", i, n)
			}
		}
	})

	t.Run("SIGKILLed switch is restarted and guests ping again within 5s", func(t *testing.T) {
		plugin := childOf(st.LocoPID, "loco-plugin-network-socket")
		if plugin == 0 {
			t.Fatalf("no network plugin process under loco (pid %d)", st.LocoPID)
		}
		if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		var err error
		for time.Since(killed) < time.Minute {
			if err = g.allPairsPing(ips, 1, time.Second); err == nil {
				break
			}
		}
		took := time.Since(killed)
		t.Logf("every pair pings again %s after the SIGKILL", took.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("guests cannot ping a minute after the switch was killed: %v", err)
		}
		if took > 20*time.Second {
			t.Errorf("took %s, want within 20s", took)
		}
		if p := childOf(st.LocoPID, "loco-plugin-network-socket"); p == 0 || p == plugin {
			t.Errorf("plugin pid %d after the kill (was %d)", p, plugin)
		}
		st2 := e.Status(spec)
		for i, gs := range st2.Guests {
			if gs.PID != st.Guests[i].PID || e.ReadyCount(cl, i) != 1 {
				t.Errorf("guest %d restarted with the switch: pid %d -> %d, ready %d", i, st.Guests[i].PID, gs.PID, e.ReadyCount(cl, i))
			}
		}
	})

	t.Run("a frozen guest turns unreachable within 10s", func(t *testing.T) {
		pid := st.Guests[2].PID
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		defer syscall.Kill(pid, syscall.SIGCONT)
		for e.lanStatus(t, cl).Ports[2].Reachable {
			if time.Since(stopped) > time.Minute {
				t.Fatal("still reachable a minute after SIGSTOP")
			}
			time.Sleep(200 * time.Millisecond)
		}
		took := time.Since(stopped)
		t.Logf("unreachable %s after SIGSTOP", took.Round(time.Millisecond))
		if took > 30*time.Second {
			t.Errorf("took %s, want within 30s", took)
		}
		lan := e.lanStatus(t, cl)
		if lan.Healthy || !lan.Ports[0].Reachable || !lan.Ports[1].Reachable {
			t.Errorf("with guest 2 frozen: %+v", lan)
		}
		if out := e.MustRun("lan", "status", spec); !strings.Contains(out, "LAN UNHEALTHY: 2/3 guests reachable") {
			t.Errorf("loco lan status:\n%s", out)
		}
		syscall.Kill(pid, syscall.SIGCONT)
		resumed := time.Now()
		for !e.lanStatus(t, cl).Ports[2].Reachable {
			if time.Since(resumed) > time.Minute {
				t.Fatal("not reachable a minute after SIGCONT")
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("reachable again %s after SIGCONT", time.Since(resumed).Round(time.Millisecond))
	})

	t.Run("DHCP gives a restarted guest its address again", func(t *testing.T) {
		if err := syscall.Kill(st.Guests[1].PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.WaitReady(cl, 1, 2)
		if got := e.waitSerial(t, cl, 1, dhcpRe, 2)[1]; got != ips[1] {
			t.Fatalf("after its restart guest 1 leased %s, want %s", got, ips[1])
		}
		if err := g.ping(0, ips[1], 1, 3*time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("stop and run: every guest gets its address again", func(t *testing.T) {
		e.MustRun("stop", "--grace", "5s", spec)
		ready, leases := make([]int, 3), make([]int, 3)
		for i := range ready {
			ready[i] = e.ReadyCount(cl, i)
			b, _ := os.ReadFile(filepath.Join(e.GuestDir(cl, i), "serial.log"))
			leases[i] = len(dhcpRe.FindAllString(string(b), -1))
		}
		e.MustRun("run", "--detach", spec)
		for i := range ips {
			e.WaitReady(cl, i, ready[i]+1)
			if got := e.waitSerial(t, cl, i, dhcpRe, leases[i]+1)[1]; got != ips[i] {
				t.Errorf("after stop and run guest %d leased %s, want %s", i, got, ips[i])
			}
		}
		if err := g.allPairsPing(ips, 1, 3*time.Second); err != nil {
			t.Error(err)
		}
	})
}

// waitCount polls count until it reaches want, for at most 30s; more than
// want fails at once.
func waitCount(t testing.TB, what string, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := count()
		if n == want {
			return
		}
		if n > want {
			t.Fatalf("%s: %d times, want %d", what, n, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// statInt reads key=N from an agent reply.
func statInt(t testing.TB, reply, key string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no %s in %q", key, reply)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
