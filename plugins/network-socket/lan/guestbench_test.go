package lan

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/sdk"
)

// BenchmarkGuestLAN runs the same traffic between two test guests (TCG)
// over three LANs: this switch, Debian's vde_switch, and QEMU's multicast
// backend. It is a benchmark, not a test: it reports, it does not judge.
// One iteration boots two guests per backend; run it once:
//
//	go test -run '^$' -bench GuestLAN -benchtime 1x -timeout 30m ./plugins/network-socket/lan
//
// vde_switch comes from Debian's vde2 package (make deps installs it).
func BenchmarkGuestLAN(b *testing.B) {
	guest := testenv.TestGuest(b)
	backends := []struct {
		name  string
		setup func(b *testing.B, dir string) []string // netdev args per guest
	}{
		{"socket", socketBackend},
		{"vde_switch", vdeBackend},
		{"qemu-mcast", mcastBackend},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				runGuestTraffic(b, guest, be.setup)
			}
		})
	}
}

func socketBackend(b *testing.B, dir string) []string {
	cl := sdk.Cluster{Name: "bench", StateDir: dir}
	for i := 0; i < 2; i++ {
		gd := filepath.Join(dir, fmt.Sprint(i))
		os.MkdirAll(gd, 0o700)
		cl.Instances = append(cl.Instances, sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("bench-%d", i), MAC: benchMAC(i), StateDir: gd})
	}
	raw := defaultRaw()
	raw.DHCP = false // every backend gets the same static addresses
	cfg, err := ParseConfig(raw, 2)
	if err != nil {
		b.Fatal(err)
	}
	seg, err := NewSegment(hclog.NewNullLogger(), cfg, cl)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		b.Logf("switch drops: %v", seg.sw.Drops())
		seg.Close()
	})
	var args []string
	for i := 0; i < 2; i++ {
		a, err := seg.Attach(i)
		if err != nil {
			b.Fatal(err)
		}
		args = append(args, a[1])
	}
	return args
}

func vdeBackend(b *testing.B, dir string) []string {
	if _, err := exec.LookPath("vde_switch"); err != nil {
		b.Skip("vde_switch is not installed (apt-get install vde2)")
	}
	ctl := filepath.Join(dir, "vde.ctl")
	cmd := exec.Command("vde_switch", "--sock", ctl)
	// vde_switch reads management commands from stdin and exits at EOF.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(ctl, "ctl")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("vde_switch did not create its control socket")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := "vde,id=net0,sock=" + ctl
	return []string{a, a}
}

func mcastBackend(b *testing.B, dir string) []string {
	port := 20000 + os.Getpid()%20000
	a := fmt.Sprintf("socket,id=net0,mcast=230.0.0.1:%d,localaddr=127.0.0.1", port)
	return []string{a, a}
}

func benchMAC(i int) string { return fmt.Sprintf("52:54:00:88:00:%02x", i) }

// benchGuest is a test guest QEMU booted directly, with its agent.
type benchGuest struct {
	dir string
	cmd *exec.Cmd
}

func bootBenchGuest(b *testing.B, image, dir string, i int, netdev string) *benchGuest {
	os.MkdirAll(dir, 0o700)
	overlay := filepath.Join(dir, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", filepath.Join(image, "base.qcow2"), overlay).CombinedOutput(); err != nil {
		b.Fatalf("qemu-img: %v\n%s", err, out)
	}
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-display", "none", "-nodefaults", "-vga", "std",
		"-kernel", filepath.Join(image, "vmlinuz"), "-initrd", filepath.Join(image, "initrd.img"),
		"-append", fmt.Sprintf("console=ttyS0 loco.name=bench-%d loco.ip=10.88.0.%d/24", i, i+1),
		"-drive", "file="+overlay+",if=ide,format=qcow2",
		"-netdev", netdev, "-device", "e1000,netdev=net0,mac="+benchMAC(i),
		"-chardev", "file,id=s0,path="+filepath.Join(dir, "serial.log"), "-serial", "chardev:s0",
		"-chardev", "socket,id=s1,path="+filepath.Join(dir, "console.sock")+",server=on,wait=off", "-serial", "chardev:s1")
	out, _ := os.Create(filepath.Join(dir, "qemu.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	g := &benchGuest{dir: dir, cmd: cmd}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, _ := os.ReadFile(filepath.Join(dir, "serial.log"))
		if strings.Contains(string(s), "LOCO-READY") {
			return g
		}
		if time.Now().After(deadline) {
			q, _ := os.ReadFile(filepath.Join(dir, "qemu.log"))
			b.Fatalf("guest %d did not boot; serial:\n%s\nqemu:\n%s", i, s, q)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// agent sends one command to the guest's agent (after the echo sync its
// README asks for) and returns the reply without "OK ".
func (g *benchGuest) agent(b *testing.B, command string) string {
	c, err := net.DialTimeout("unix", filepath.Join(g.dir, "console.sock"), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	synced, err := testenv.SyncAgent(c, r, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(c, "%s\n", command)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == synced {
			continue // the answer to a repeated echo
		}
		if strings.HasPrefix(line, "ERR") {
			b.Fatalf("%s: %s", command, line)
		}
		if strings.HasPrefix(line, "OK") {
			return strings.TrimPrefix(line, "OK ")
		}
	}
}

func field(b *testing.B, s, key string) float64 {
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `=([0-9.]+)`).FindStringSubmatch(s)
	if m == nil {
		b.Fatalf("no %s in %q", key, s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// runGuestTraffic boots two guests on the backend and measures, from
// inside them: ping round trips, a UDP burst, and whether a guest's own
// broadcasts come back to it.
func runGuestTraffic(b *testing.B, image string, setup func(*testing.B, string) []string) {
	b.StopTimer()
	dir, err := os.MkdirTemp("", "lb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	netdevs := setup(b, dir)
	var gs [2]*benchGuest
	for i := range gs {
		gs[i] = bootBenchGuest(b, image, filepath.Join(dir, "g"+fmt.Sprint(i)), i, netdevs[i])
	}
	for _, g := range gs {
		g.agent(b, "raw-listen")
	}
	gs[1].agent(b, "udp-listen 5001")
	gs[0].agent(b, "icmp-ping 10.88.0.2 5 2000") // warm up: ARP, learning
	b.StartTimer()

	ping := gs[0].agent(b, "icmp-ping 10.88.0.2 200 2000")
	const burst = 2000
	send := gs[0].agent(b, fmt.Sprintf("udp-send 10.88.0.2 5001 x %d", burst))
	time.Sleep(3 * time.Second)
	got := field(b, gs[1].agent(b, "udp-recv 5001"), "n")
	overflow := field(b, gs[1].agent(b, "udp-stats"), "rcvbuf_errors")
	gs[0].agent(b, "raw-send 0x8137 broadcast echo-check 100")
	time.Sleep(time.Second)
	b.StopTimer()

	b.ReportMetric(field(b, ping, "recv"), "pings-answered/200")
	b.ReportMetric(field(b, ping, "p50"), "ping-ms-p50")
	b.ReportMetric(field(b, ping, "p99"), "ping-ms-p99")
	b.ReportMetric(got, "udp-delivered/2000")
	b.ReportMetric(overflow, "udp-lost-in-receiver")
	b.ReportMetric(float64(burst)/(field(b, send, "ms")/1000), "udp-sent/s")
	b.ReportMetric(field(b, gs[0].agent(b, "raw-stats"), "self_echoes"), "own-frames-echoed")
}
