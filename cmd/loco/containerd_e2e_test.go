package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"github.com/chromedp/chromedp"
	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/testenv"
)

// containerdSpec is e.Spec with runtime "containerd" on the test's private
// containerd, in a namespace of its own.
func (e *e2e) containerdSpec(cd *testenv.Containerd, name string, n int, extra string) string {
	e.T.Helper()
	path := e.Spec(name, n, extra)
	src := string(must(os.ReadFile(path)))
	src = strings.Replace(src, `runtime "process" {`, fmt.Sprintf("runtime \"containerd\" {\n    address   = %q\n    namespace = %q", cd.Address, "e2e-"+name), 1)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.T.Fatal(err)
	}
	return path
}

type ctrStatusJSON struct {
	Guests []struct {
		Name      string `json:"name"`
		Running   bool   `json:"running"`
		PID       int    `json:"pid"`
		Container string `json:"container"`
		Image     string `json:"image"`
	} `json:"guests"`
	Runtime string `json:"runtime"`
}

func (e *e2e) ctrStatus(spec string) ctrStatusJSON {
	e.T.Helper()
	var st ctrStatusJSON
	if err := json.Unmarshal([]byte(e.MustRun("status", "--json", spec)), &st); err != nil {
		e.T.Fatal(err)
	}
	return st
}

// leftovers lists what a cluster left in containerd and on the host:
// containers, tasks, active snapshots (the image's committed layer is the
// image's, not a guest's), mounts under the daemon's directories and shims.
func leftovers(t testing.TB, cd *testenv.Containerd, ns string) []string {
	t.Helper()
	c, err := containerd.New(cd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	var left []string
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range cs {
		left = append(left, "container "+ctr.ID())
	}
	ts, err := c.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range ts.Tasks {
		left = append(left, fmt.Sprintf("task %s (pid %d)", task.ID, task.Pid))
	}
	err = c.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			left = append(left, "snapshot "+info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cd.Mounts() {
		left = append(left, "mount "+m)
	}
	for _, pid := range cd.Shims() {
		left = append(left, fmt.Sprintf("shim pid %d", pid))
	}
	return left
}

// TestContainerdLifecycle walks the containerd runtime's promises with two
// real guests on a private containerd: guests as labelled containers from
// loco's image (its digest in `loco status`), a SIGKILLed loco that run
// reattaches to without reboots, a SIGKILLed containerd that the guests
// outlive and loco reconnects to (a guest killed afterwards is restarted,
// so the supervisor watches again), and a stop that leaves nothing behind.
func TestContainerdLifecycle(t *testing.T) {
	cd := testenv.StartContainerd(t)
	e := newE2E(t)
	spec := e.containerdSpec(cd, "ctd", 2, "")
	e.MustRun("run", "--detach", spec)
	for i := 0; i < 2; i++ {
		e.WaitReady("ctd", i, 1)
	}
	st := e.ctrStatus(spec)
	pids := map[int]int{}
	for i, g := range st.Guests {
		if !g.Running || g.PID == 0 || !strings.HasPrefix(g.Image, "loco.local/qemu-host:1@sha256:") || !strings.HasPrefix(g.Container, g.Name+"-") {
			t.Errorf("guest %d: %+v", i, g)
		}
		pids[i] = g.PID
	}
	if st.Runtime != "containerd" {
		t.Errorf("status runtime %q", st.Runtime)
	}
	if human := e.MustRun("status", spec); !strings.Contains(human, "runtime containerd: namespace e2e-ctd") || !strings.Contains(human, "image loco.local/qemu-host:1@sha256:") {
		t.Errorf("status does not show the runtime and image digest:\n%s", human)
	}

	t.Run("guests are labelled containers running QEMU", func(t *testing.T) {
		c, err := containerd.New(cd.Address)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := namespaces.WithNamespace(context.Background(), "e2e-ctd")
		cs, err := c.Containers(ctx, `labels."loco.cluster"==ctd`)
		if err != nil || len(cs) != 2 {
			t.Fatalf("containers of the cluster: %d, %v", len(cs), err)
		}
		// What the stop check below expects gone is there now: it would
		// see a leak.
		if n := len(leftovers(t, cd, "e2e-ctd")); n < 2*4 {
			t.Errorf("while running, only %d containers, tasks, snapshots, mounts and shims are seen, want 8", n)
		}
		for _, ctr := range cs {
			labels, _ := ctr.Labels(ctx)
			task, err := ctr.Task(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			i, _ := strconv.Atoi(labels["loco.index"])
			if want := pids[i]; int(task.Pid()) != want {
				t.Errorf("container %s (index %d): task pid %d, status says %d", ctr.ID(), i, task.Pid(), want)
			}
			cmdline := string(must(os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", task.Pid()))))
			if !strings.HasPrefix(cmdline, "qemu-system-x86_64\x00") {
				t.Errorf("task %d runs %q", task.Pid(), cmdline)
			}
		}
	})

	t.Run("SIGKILLed loco: run reattaches to the same tasks", func(t *testing.T) {
		holder := e.Status(spec).LocoPID
		if err := syscall.Kill(holder, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		e.MustRun("run", "--detach", spec)
		for i, g := range e.ctrStatus(spec).Guests {
			if g.PID != pids[i] || !g.Running {
				t.Errorf("guest %d: pid %d running %v, want the same pid %d", i, g.PID, g.Running, pids[i])
			}
		}
		time.Sleep(2 * time.Second)
		for i := 0; i < 2; i++ {
			if n := e.ReadyCount("ctd", i); n != 1 {
				t.Errorf("guest %d printed LOCO-READY %d times: it rebooted", i, n)
			}
		}
	})

	t.Run("SIGKILLed containerd: guests live on, loco reconnects", func(t *testing.T) {
		cd.Kill()
		time.Sleep(2 * time.Second)
		for i, pid := range pids {
			if !alive(pid) {
				t.Fatalf("guest %d (pid %d) died with containerd", i, pid)
			}
		}
		if _, errOut, code := e.Run("status", spec); code == 0 || !strings.Contains(errOut, "containerd is not running") {
			t.Errorf("status without containerd: exit %d, %s", code, errOut)
		}
		if err := cd.Start(); err != nil {
			t.Fatal(err)
		}
		for i, g := range e.ctrStatus(spec).Guests {
			if g.PID != pids[i] || !g.Running {
				t.Errorf("after containerd restart, guest %d: %+v, want running with pid %d", i, g, pids[i])
			}
		}
		for i := 0; i < 2; i++ {
			if n := e.ReadyCount("ctd", i); n != 1 {
				t.Errorf("guest %d printed LOCO-READY %d times: it rebooted", i, n)
			}
		}
		// The supervisor's watch survived the restart: a guest that dies
		// now is noticed and restarted.
		if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.WaitReady("ctd", 1, 2)
		st := e.ctrStatus(spec)
		if g := st.Guests[1]; g.PID == pids[1] || !g.Running {
			t.Errorf("guest 1 not restarted: %+v", g)
		}
		if g := st.Guests[0]; g.PID != pids[0] || e.ReadyCount("ctd", 0) != 1 {
			t.Errorf("guest 0 was disturbed: %+v", g)
		}
	})

	t.Run("stop leaves no container, task, snapshot, mount or shim", func(t *testing.T) {
		start := time.Now()
		e.MustRun("stop", spec)
		t.Logf("loco stop of 2 guests took %v", time.Since(start))
		if left := leftovers(t, cd, "e2e-ctd"); len(left) > 0 {
			t.Errorf("left after loco stop:\n%s", strings.Join(left, "\n"))
		}
		if _, err := os.Stat(filepath.Join(e.GuestDir("ctd", 0), "disk.qcow2")); err != nil {
			t.Errorf("overlay gone after a plain stop: %v", err)
		}
		if s := string(must(os.ReadFile(filepath.Join(e.GuestDir("ctd", 0), "serial.log")))); !strings.Contains(s, "LOCO-POWEROFF") {
			t.Error("guest 0 was not powered down through ACPI")
		}
		for _, f := range []string{"qemu.log"} {
			if b, err := os.ReadFile(filepath.Join(e.GuestDir("ctd", 0), f)); err != nil || !strings.Contains(string(b), "containerd e2e-ctd/") {
				t.Errorf("%s: %v\n%s", f, err, b)
			}
		}
	})
}

// TestContainerdUnreachable: without a containerd, or without access to
// its socket, validate and run say so and how to fix it, before anything
// starts.
func TestContainerdUnreachable(t *testing.T) {
	e := newE2E(t)
	missing := filepath.Join(e.Dir, "nope.sock")
	spec := e.Spec("noctd", 1, "")
	src := string(must(os.ReadFile(spec)))
	os.WriteFile(spec, []byte(strings.Replace(src, `runtime "process" {`, fmt.Sprintf("runtime \"containerd\" {\n    address = %q", missing), 1)), 0o644)
	for _, cmd := range []string{"validate", "run"} {
		_, errOut, code := e.Run(cmd, spec)
		if code == 0 || !strings.Contains(errOut, "containerd is not running: no socket at "+missing) || !strings.Contains(errOut, "containerd --config") {
			t.Errorf("loco %s without containerd: exit %d\n%s", cmd, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(e.StateDir, "noctd", "guests")); !os.IsNotExist(err) {
		t.Errorf("run made guest state without a runtime: %v", err)
	}

	// A socket that only root may use, and loco run as nobody: everything
	// else (binary, spec, images) is readable by nobody.
	dir := must(os.MkdirTemp("", "lp"))
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(sock, 0o600)
	bin := filepath.Join(dir, "loco")
	os.WriteFile(bin, must(os.ReadFile(e.Bin)), 0o755)
	base := filepath.Join(dir, "base.qcow2")
	os.WriteFile(base, nil, 0o644)
	specPath := filepath.Join(dir, "c.hcl")
	os.WriteFile(specPath, []byte(fmt.Sprintf("cluster \"noacc\" {\n  image {\n    disk = %q\n  }\n  runtime \"containerd\" {\n    address = %q\n  }\n}\n", base, sock)), 0o644)
	cmd := exec.Command(bin, "validate", specPath)
	cmd.Env = []string{"HOME=" + dir, "LOCO_STATE_DIR=" + filepath.Join(dir, "state"), "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot connect to containerd at "+sock+": permission denied") {
		t.Errorf("validate as nobody on a root-only socket: %v\n%s", err, out)
	}
}

// TestContainerdDemo runs configs/demo.hcl (LAN, input and stream plugins)
// with its runtime block switched to containerd: the guests lease their
// addresses and ping each other through the socket LAN from inside their
// containers, and the stream plugin reaches their VNC sockets. The
// browser side of the dashboard is TestDashboard's, on the process runtime.
func TestContainerdDemo(t *testing.T) {
	cd := testenv.StartContainerd(t)
	e := newE2E(t)
	src := string(must(os.ReadFile(filepath.Join(testenv.RepoRoot(), "configs", "demo.hcl"))))
	for old, repl := range map[string]string{
		`"../build/testguest/`:      `"` + e.Guest + "/",
		`runtime "process" {`:       fmt.Sprintf("runtime \"containerd\" {\n    address   = %q\n    namespace = \"e2e-demo\"", cd.Address),
		`listen = "127.0.0.1:7780"`: `listen = "127.0.0.1:0"`,
	} {
		if !strings.Contains(src, old) {
			t.Fatalf("configs/demo.hcl no longer has %s", old)
		}
		src = strings.ReplaceAll(src, old, repl)
	}
	spec := filepath.Join(e.Dir, "demo.hcl")
	os.WriteFile(spec, []byte(src), 0o644)
	e.Track(spec)

	e.MustRun("run", "--detach", spec)
	g := &lanGuests{e: e, cluster: "demo", mu: make([]sync.Mutex, 3)}
	ips := []string{"10.87.0.10", "10.87.0.11", "10.87.0.12"}
	dhcpRe := regexp.MustCompile(`LOCO-DHCP name=\S+ ip=(\S+)`)
	for i := range ips {
		e.WaitReady("demo", i, 1)
		if got := e.waitSerial(t, "demo", i, dhcpRe, 1)[1]; got != ips[i] {
			t.Fatalf("guest %d leased %s, want %s", i, got, ips[i])
		}
	}
	for i, gs := range e.ctrStatus(spec).Guests {
		if !gs.Running || gs.Image == "" {
			t.Errorf("guest %d is not a running containerd guest: %+v", i, gs)
		}
	}
	if err := g.allPairsPing(ips, 3, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	var streams []streamStat
	apiGet(t, base, tok, "/api/streams", &streams)
	if len(thumbs(streams)) != 3 {
		t.Errorf("the stream plugin has %d guests, want 3: %+v", len(thumbs(streams)), streams)
	}
	// The plugins reach the guests' sockets inside the containers: the
	// VNC server the stream plugin encodes from (it connects once a viewer
	// comes) and the input plugin's QMP (a screenshot through the API).
	for i := range ips {
		c, err := net.DialTimeout("unix", filepath.Join(e.GuestDir("demo", i), "vnc.sock"), 5*time.Second)
		if err != nil {
			t.Fatalf("guest %d VNC: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		banner := make([]byte, 12)
		_, err = io.ReadFull(c, banner)
		c.Close()
		if err != nil || !strings.HasPrefix(string(banner), "RFB 003.") {
			t.Errorf("guest %d VNC banner %q: %v", i, banner, err)
		}
		shot, err := client.New(base, tok, nil).Screenshot(context.Background(), fmt.Sprint(i))
		if err != nil || !bytes.HasPrefix(shot.PNG, []byte("\x89PNG")) {
			t.Errorf("guest %d screenshot: %v, %d bytes", i, err, len(shot.PNG))
		}
	}
	// The dashboard plays every guest from inside its container.
	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "three live tiles", fmt.Sprintf(allLive, 3), 2*time.Minute)
	chromedp.Cancel(ctx)
	e.MustRun("stop", spec)
	if left := leftovers(t, cd, "e2e-demo"); len(left) > 0 {
		t.Errorf("left after loco stop:\n%s", strings.Join(left, "\n"))
	}
}
