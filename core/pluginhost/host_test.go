package pluginhost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/sdk"
)

// pluginDir holds real plugin binaries built from testdata/plugins by TestMain.
var pluginDir string

func TestMain(m *testing.M) {
	if os.Getenv("LOCO_PLUGINHOST_CHILD") != "" {
		childHost() // never returns
	}
	dir, err := os.MkdirTemp("", "loco-plugins-")
	if err != nil {
		panic(err)
	}
	for src, bin := range map[string]string{"good": "loco-plugin-network-test", "future": "loco-plugin-network-future", "chatty": "loco-plugin-input-chatty"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, bin), "./testdata/plugins/"+src).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building test plugin %s: %v\n%s", src, err, out)
			os.Exit(2)
		}
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childHost is a plugin host in its own process, for the test that SIGKILLs
// the host: it loads the spec named in argv, prints the plugin's PID, waits.
func childHost() {
	h := New(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	h.Dirs = []string{os.Getenv("LOCO_PLUGINHOST_CHILD")}
	l := spec.NewLoader()
	c, diags := l.Load(os.Args[len(os.Args)-1])
	if diags.HasErrors() {
		fmt.Println("ERR", diags)
		os.Exit(1)
	}
	set, diags := h.Load(context.Background(), c, sdk.Cluster{Name: c.Name, StateDir: filepath.Dir(c.File)})
	if diags.HasErrors() {
		fmt.Println("ERR", diags)
		os.Exit(1)
	}
	fmt.Printf("PID %d %s\n", set.Get("network").PID(), set.Get("network").socketPath())
	select {}
}

type fixture struct {
	dir  string
	host *Host
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h.Dirs = []string{pluginDir}
	t.Cleanup(h.Close)
	return &fixture{dir: dir, host: h}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// load writes a spec around the given cluster body and loads its plugins.
func (f *fixture) load(t *testing.T, body string) (*Set, hcl.Diagnostics, string) {
	t.Helper()
	path := filepath.Join(f.dir, "cluster.hcl")
	src := "cluster \"t\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n" + body + "}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	l := spec.NewLoader()
	l.Environ = []string{}
	c, diags := l.Load(path)
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	facts := sdk.Cluster{Name: "t", StateDir: f.dir, Instances: []sdk.Instance{{Index: 0, Name: "t-0"}}}
	set, diags := f.host.Load(context.Background(), c, facts)
	return set, diags, path
}

func (f *fixture) events(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "events.log"))
	return string(b)
}

func TestSchemaNegotiationAndConfigure(t *testing.T) {
	f := newFixture(t)
	set, diags, _ := f.load(t, "  network \"test\" {\n    subnet = \"10.1.0.0/24\"\n    probe {\n      interval = \"2s\"\n    }\n  }\n")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := set.Get("network")
	if p.APIVersion() != 1 || p.Info().Version != "0.0.1" {
		t.Errorf("api %d, info %+v", p.APIVersion(), p.Info())
	}
	// The default for ports came from the plugin's schema, not the user.
	if ev := f.events(t); !strings.Contains(ev, "subnet=10.1.0.0/24 ports=4 instances=1") {
		t.Errorf("plugin was not configured as expected; events:\n%s", ev)
	}
}

// TestConfigErrorsPointIntoUserFile: every mistake in a plugin's block is
// reported at its place in the user's file, whether hcldec found it against
// the plugin's schema or the plugin itself rejected the value.
func TestConfigErrorsPointIntoUserFile(t *testing.T) {
	cases := []struct {
		name, body, wantPos, wantMsg string
	}{
		{"wrong type", "  network \"test\" {\n    subnet = \"10.0.0.0/8\"\n    ports = \"many\"\n  }\n", ":7:13", "a number is required"},
		{"missing required", "  network \"test\" {\n  }\n", ":5:18", `The argument "subnet" is required`},
		{"unknown attribute", "  network \"test\" {\n    subnet = \"10.0.0.0/8\"\n    speed = 1\n  }\n", ":7:5", "Unsupported argument"},
		{"rejected by plugin", "  network \"test\" {\n    subnet = \"banana\"\n  }\n", ":6:5", `Invalid subnet: "banana" is not CIDR`},
		{"unknown plugin", "  network \"sockit\" {}\n", ":5:3", `Plugins found: input "chatty", network "future", network "test"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, diags, path := f.load(t, tc.body)
			var got []string
			for _, d := range diags {
				s := spec.FormatDiagnostic(d)
				got = append(got, s)
				if strings.HasPrefix(s, path+tc.wantPos) && strings.Contains(s, tc.wantMsg) {
					return
				}
			}
			t.Errorf("want a diagnostic at %s%s containing %q; got:\n%s", path, tc.wantPos, tc.wantMsg, strings.Join(got, "\n"))
		})
	}
}

func TestIncompatibleAPIVersionIsSkipped(t *testing.T) {
	f := newFixture(t)
	_, diags, _ := f.load(t, "  network \"future\" {}\n")
	if !diags.HasErrors() {
		t.Fatal("a plugin speaking only API version 2 was accepted")
	}
	msg := spec.FormatDiagnostic(diags[0])
	for _, want := range []string{"Plugin speaks another API version", "speaks plugin API version 2; this loco speaks 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestStdoutBeforeHandshakeIsReadable(t *testing.T) {
	f := newFixture(t)
	_, diags, _ := f.load(t, "  input \"chatty\" {}\n")
	if !diags.HasErrors() {
		t.Fatal("a plugin that wrote to stdout before the handshake was accepted")
	}
	msg := spec.FormatDiagnostic(diags[0])
	if !strings.Contains(msg, `wrote "hello from chatty" to stdout before the plugin handshake`) {
		t.Errorf("unhelpful message: %s", msg)
	}
}

func TestPinMismatchRefusesToLaunch(t *testing.T) {
	f := newFixture(t)
	_, diags, _ := f.load(t, "  network \"test\" {\n    subnet = \"10.0.0.0/8\"\n  }\n  plugin \"network-test\" {\n    sha256 = \""+strings.Repeat("0", 64)+"\"\n  }\n")
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "does not match its pin") {
		t.Fatalf("want a pin mismatch, got %v", diags)
	}
	if ev := f.events(t); ev != "" {
		t.Errorf("the plugin ran although its pin did not match: %s", ev)
	}
}

func TestRestartAfterSIGKILLResendsState(t *testing.T) {
	f := newFixture(t)
	set, diags, _ := f.load(t, "  network \"test\" {\n    subnet = \"10.2.0.0/24\"\n  }\n")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := set.Get("network")
	if _, err := p.Attach(context.Background(), sdk.Instance{Index: 0, Name: "t-0"}); err != nil {
		t.Fatal(err)
	}
	oldPID := p.PID()
	killed := time.Now()
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want := []string{"configure pid=%d subnet=10.2.0.0/24", "attach pid=%d instance=0"}
	var restarted time.Duration
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pid := p.PID()
		if pid == oldPID || pid == 0 {
			continue
		}
		ev := f.events(t)
		if strings.Contains(ev, fmt.Sprintf(want[0], pid)) && strings.Contains(ev, fmt.Sprintf(want[1], pid)) {
			restarted = time.Since(killed)
			break
		}
	}
	if restarted == 0 {
		t.Fatalf("plugin was not restarted with its state; events:\n%s", f.events(t))
	}
	t.Logf("plugin restarted and reconfigured %v after SIGKILL", restarted)
	// ~130 ms measured on an idle machine; the ceiling allows for two busy
	// cores (the figure is logged above).
	if restarted > 10*time.Second {
		t.Errorf("restart took %v, more than 10s", restarted)
	}
	if p.Restarts() != 1 {
		t.Errorf("restarts = %d, want 1", p.Restarts())
	}
	if _, err := p.Client().LANStatus(context.Background()); err != nil {
		t.Errorf("restarted plugin does not answer: %v", err)
	}
}

func TestNoPluginOutlivesItsHost(t *testing.T) {
	t.Run("host closes", func(t *testing.T) {
		f := newFixture(t)
		set, diags, _ := f.load(t, "  network \"test\" {\n    subnet = \"10.3.0.0/24\"\n  }\n")
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		pid := set.Get("network").PID()
		f.host.Close()
		waitGone(t, pid)
	})
	t.Run("host is SIGKILLed", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644)
		path := filepath.Join(dir, "c.hcl")
		os.WriteFile(path, []byte("cluster \"t\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n  network \"test\" {\n    subnet = \"10.4.0.0/24\"\n  }\n}\n"), 0o644)
		cmd := exec.Command(os.Args[0], "-test.run=^$", path)
		cmd.Env = append(os.Environ(), "LOCO_PLUGINHOST_CHILD="+pluginDir)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "PID ") {
			t.Fatalf("child host said %q (%v)", line, err)
		}
		go io.Copy(io.Discard, stdout)
		pid, _ := strconv.Atoi(strings.Fields(line)[1])
		if !alive(pid) {
			t.Fatalf("plugin %d is not running under the child host", pid)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		waitGone(t, pid)
	})
}

// waitGone waits for a process to be gone from /proc (or a zombie nobody
// reaped, which runs no code).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Errorf("plugin process %d still runs after its host is gone", pid)
}

func alive(pid int) bool { return proc.Alive(pid) }

func TestDiscoverExplainsSkips(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("loco-plugin-network-a", 0o755)
	write("loco-plugin-network-b", 0o644)
	write("loco-plugin-gpu-x", 0o755)
	write("loco-plugin-stream", 0o755)
	write("unrelated", 0o755)
	cands := Discover([]string{dir, pluginDir})
	got := map[string]string{}
	var mu sync.Mutex
	for _, c := range cands {
		mu.Lock()
		got[filepath.Base(c.Path)+"@"+filepath.Dir(c.Path)] = c.Skipped
		mu.Unlock()
	}
	want := map[string]string{
		"loco-plugin-network-a@" + dir:          "",
		"loco-plugin-network-b@" + dir:          "not executable",
		"loco-plugin-gpu-x@" + dir:              `unknown kind "gpu"`,
		"loco-plugin-stream@" + dir:             "name is not loco-plugin-<kind>-<name>",
		"loco-plugin-network-test@" + pluginDir: "",
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !strings.HasPrefix(g, w) {
			t.Errorf("%s: skipped=%q (present %v), want prefix %q", k, g, ok, w)
		}
	}
	if _, ok := got["unrelated@"+dir]; ok {
		t.Error("a file without the plugin prefix was listed")
	}
}

// TestServeWithoutGoPlugin: the same services answer a plain gRPC dial when
// the plugin runs as `serve --listen`, the way a sidecar would, and a
// non-loopback address is refused without --allow-remote.
func TestServeWithoutGoPlugin(t *testing.T) {
	bin := filepath.Join(pluginDir, "loco-plugin-network-test")
	out, err := exec.Command(bin, "serve", "--listen", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address") {
		t.Errorf("non-loopback listen: err %v, output %s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(strings.TrimSpace(addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := sdk.NewClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil || info.Name != "test" || info.Kind != sdk.KindNetwork {
		t.Fatalf("info %+v, %v", info, err)
	}
	if _, err := c.LANStatus(ctx); err != nil {
		t.Errorf("status: %v", err)
	}
	// SIGTERM stops it cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestBinaryRefusesToRunByHand: started without loco's handshake cookie, a
// plugin says what it is instead of hanging.
func TestBinaryRefusesToRunByHand(t *testing.T) {
	out, err := exec.Command(filepath.Join(pluginDir, "loco-plugin-network-test")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is a loco plugin: loco starts it") {
		t.Errorf("err %v, output %s", err, out)
	}
}
