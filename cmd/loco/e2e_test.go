package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
)

// e2e drives the real loco binary against real QEMU test guests (TCG).
type e2e struct {
	t        testing.TB
	bin      string
	guest    string
	stateDir string
	dir      string
	specs    []string // every spec written, to stop them all at the end
}

func newE2E(t testing.TB) *e2e {
	t.Helper()
	e := &e2e{t: t, bin: filepath.Join(testenv.Binaries(t), "loco"), guest: testenv.TestGuest(t), dir: testenv.ShortTempDir(t)}
	e.stateDir = filepath.Join(e.dir, "state")
	t.Cleanup(func() {
		// Whatever a failed test left running: stop it hard, before its
		// state directory is removed under it.
		for _, s := range e.specs {
			e.loco("stop", "--grace", "0s", "--destroy", s)
		}
	})
	return e
}

// spec writes cluster.hcl for n test guests and returns its path.
func (e *e2e) spec(name string, n int, extra string) string {
	path := filepath.Join(e.dir, name+".hcl")
	src := fmt.Sprintf(`cluster %q {
  instances = %d
  image {
    kernel     = %q
    initrd     = %q
    disk       = %q
    min_memory = 96
  }
  guest {
    memory = 128
    accel  = "tcg"
  }
  runtime "process" {
    stop_grace = "5s"
  }
  api {
    listen = "127.0.0.1:0"
  }
%s}
`, name, n, filepath.Join(e.guest, "vmlinuz"), filepath.Join(e.guest, "initrd.img"), filepath.Join(e.guest, "base.qcow2"), extra)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if !slices.Contains(e.specs, path) {
		e.specs = append(e.specs, path)
	}
	return path
}

func (e *e2e) loco(args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+e.stateDir, "XDG_CACHE_HOME="+filepath.Join(e.dir, "cache"))
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running loco %v: %v", args, err)
	}
	return o.String(), er.String(), code
}

func (e *e2e) mustLoco(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.loco(args...)
	if code != 0 {
		e.t.Fatalf("loco %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type statusJSON struct {
	Cluster string `json:"cluster"`
	LocoPID int    `json:"loco_pid"`
	Accel   string `json:"accel"`
	Guests  []struct {
		Name    string `json:"name"`
		Running bool   `json:"running"`
		PID     int    `json:"pid"`
		Accel   string `json:"accel"`
	} `json:"guests"`
}

func (e *e2e) status(spec string) statusJSON {
	e.t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(e.mustLoco("status", "--json", spec)), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// api is a client of the running loco's API for cluster cl.
func (e *e2e) api(t testing.TB, cl string) *client.Client {
	t.Helper()
	base, tok, err := cluster.APIEndpoint(filepath.Join(e.stateDir, cl))
	if err != nil {
		t.Fatal(err)
	}
	return client.New(base, tok, nil)
}

func (e *e2e) guestDir(cluster string, i int) string {
	return filepath.Join(e.stateDir, cluster, "guests", fmt.Sprint(i))
}

func (e *e2e) readyCount(cluster string, i int) int {
	b, _ := os.ReadFile(filepath.Join(e.guestDir(cluster, i), "serial.log"))
	return strings.Count(string(b), "LOCO-READY name="+fmt.Sprintf("%s-%d", cluster, i))
}

// waitReady waits until guest i has printed LOCO-READY want times.
func (e *e2e) waitReady(cluster string, i, want int) {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // TCG on two busy cores
	for e.readyCount(cluster, i) < want {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(e.guestDir(cluster, i), "serial.log"))
			e.t.Fatalf("guest %s-%d printed LOCO-READY %d times, want %d; serial log:\n%s", cluster, i, e.readyCount(cluster, i), want, b)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// agent sends one command to the test agent on the guest's second serial
// port and returns its one-line answer, retrying while the guest boots.
func (e *e2e) agent(cluster string, i int, command string) string {
	e.t.Helper()
	var lastErr error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		reply, err := testenv.AskAgent(filepath.Join(e.guestDir(cluster, i), "console.sock"), command, 20*time.Second)
		if err == nil {
			return reply
		}
		lastErr = err
	}
	e.t.Fatalf("agent of %s-%d did not answer %q: %v", cluster, i, command, lastErr)
	return ""
}

func fileSum(t testing.TB, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func alive(pid int) bool { return proc.Alive(pid) }

// TestGuestLifecycle walks the process runtime's promises with three real
// guests: boot to ready, disks that survive stop and run, a loco that is
// SIGKILLed without taking its guests along, reattach without reboot,
// restart of a killed QEMU that leaves the others alone, destroy that
// removes the overlays and nothing else.
func TestGuestLifecycle(t *testing.T) {
	e := newE2E(t)
	spec := e.spec("lan", 3, "")
	base := filepath.Join(e.guest, "base.qcow2")
	baseSum := fileSum(t, base)

	out := e.mustLoco("run", "--detach", spec)
	if !strings.Contains(out, "accelerator tcg") {
		t.Errorf("run does not say which accelerator it chose:\n%s", out)
	}
	for i := 0; i < 3; i++ {
		e.waitReady("lan", i, 1)
	}
	st := e.status(spec)
	if st.LocoPID == 0 || st.Accel != "tcg" {
		t.Errorf("status: %+v", st)
	}
	pids := map[int]int{}
	for i, g := range st.Guests {
		if !g.Running || g.Accel != "tcg" {
			t.Errorf("guest %d: %+v", i, g)
		}
		pids[i] = g.PID
	}
	human := e.mustLoco("status", spec)
	if strings.Count(human, "running") != 3 || !strings.Contains(human, "tcg") {
		t.Errorf("status table:\n%s", human)
	}

	t.Run("API serves the running guests behind its token", func(t *testing.T) {
		base, tok, err := cluster.APIEndpoint(filepath.Join(e.stateDir, "lan"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "api: "+base) {
			t.Errorf("run printed another API address than the state records (%s):\n%s", base, out)
		}
		resp, err := http.Get(base + "/api/instances")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no token: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", base+"/api/instances", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var inst []struct {
			Name, State, Accel string
			PID                int
		}
		if err := json.NewDecoder(resp.Body).Decode(&inst); err != nil {
			t.Fatal(err)
		}
		if len(inst) != 3 {
			t.Fatalf("instances: %+v", inst)
		}
		for i, in := range inst {
			if in.State != "running" || in.Accel != "tcg" || in.PID != pids[i] {
				t.Errorf("instance %d: %+v, want running under tcg with pid %d", i, in, pids[i])
			}
		}
	})

	t.Run("marker written to disk", func(t *testing.T) {
		if got := e.agent("lan", 0, "disk-write survives-stop"); !strings.HasPrefix(got, "OK") {
			t.Fatalf("disk-write: %s", got)
		}
	})

	t.Run("SIGKILLed loco leaves guests running and run reattaches", func(t *testing.T) {
		if err := syscall.Kill(st.LocoPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		for i, pid := range pids {
			if !alive(pid) {
				t.Fatalf("guest %d (pid %d) died with loco", i, pid)
			}
		}
		e.mustLoco("run", "--detach", spec)
		st2 := e.status(spec)
		for i, g := range st2.Guests {
			if g.PID != pids[i] || !g.Running {
				t.Errorf("guest %d: pid %d running %v, want the same pid %d", i, g.PID, g.Running, pids[i])
			}
		}
		time.Sleep(2 * time.Second)
		for i := 0; i < 3; i++ {
			if n := e.readyCount("lan", i); n != 1 {
				t.Errorf("guest %d printed LOCO-READY %d times: it rebooted", i, n)
			}
		}
	})

	t.Run("SIGKILLed QEMU is restarted, others untouched", func(t *testing.T) {
		if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.waitReady("lan", 1, 2)
		st3 := e.status(spec)
		if st3.Guests[1].PID == pids[1] || !st3.Guests[1].Running {
			t.Errorf("guest 1 not restarted: %+v", st3.Guests[1])
		}
		for _, i := range []int{0, 2} {
			if st3.Guests[i].PID != pids[i] || e.readyCount("lan", i) != 1 {
				t.Errorf("guest %d was disturbed: %+v, ready %d", i, st3.Guests[i], e.readyCount("lan", i))
			}
		}
	})

	t.Run("marker survives stop and run", func(t *testing.T) {
		e.mustLoco("stop", spec)
		for i, pid := range pids {
			if i != 1 && alive(pid) {
				t.Errorf("guest %d still runs after stop", i)
			}
		}
		if _, err := os.Stat(filepath.Join(e.guestDir("lan", 0), "disk.qcow2")); err != nil {
			t.Fatalf("overlay gone after a plain stop: %v", err)
		}
		before := e.readyCount("lan", 0)
		e.mustLoco("run", "--detach", spec)
		e.waitReady("lan", 0, before+1)
		if got := e.agent("lan", 0, "disk-read"); got != "OK survives-stop" {
			t.Errorf("disk-read after stop and run: %q", got)
		}
	})

	t.Run("stop --destroy removes the overlays and nothing else", func(t *testing.T) {
		e.mustLoco("stop", "--destroy", spec)
		for i := 0; i < 3; i++ {
			d := e.guestDir("lan", i)
			if _, err := os.Stat(filepath.Join(d, "disk.qcow2")); !os.IsNotExist(err) {
				t.Errorf("guest %d overlay still there: %v", i, err)
			}
			if _, err := os.Stat(filepath.Join(d, "serial.log")); err != nil {
				t.Errorf("guest %d serial log removed: %v", i, err)
			}
		}
		if fileSum(t, base) != baseSum {
			t.Error("the base image was written to")
		}
	})
}

// TestBadInputFailsBeforeAnyGuestStarts: mistakes are reported with a clear
// message and no QEMU is started.
func TestBadInputFailsBeforeAnyGuestStarts(t *testing.T) {
	e := newE2E(t)
	good := e.spec("good", 1, "")
	cases := []struct {
		name, edit, want string
	}{
		{"missing base image", `disk       = "/nonexistent/base.qcow2"`, "Image file not found"},
		{"memory below the guest's need", "memory = 64", "needs at least 96 MiB"},
		{"unknown NIC model", "memory = 128\n    nic = \"e9999\"", `nic = "e9999": choose one of`},
	}
	src, _ := os.ReadFile(good)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := string(src)
			if strings.HasPrefix(tc.edit, "disk") {
				s = strings.Replace(s, s[strings.Index(s, "disk "):strings.Index(s, "min_memory")], tc.edit+"\n    ", 1)
			} else {
				s = strings.Replace(s, "memory = 128", tc.edit, 1)
			}
			path := filepath.Join(e.dir, "bad.hcl")
			os.WriteFile(path, []byte(s), 0o644)
			_, errOut, code := e.loco("run", "--detach", path)
			if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "bad.hcl:") {
				t.Errorf("exit %d, stderr:\n%s\nwant %q with a file position", code, errOut, tc.want)
			}
			if _, err := os.Stat(filepath.Join(e.stateDir, "good", "guests")); err == nil {
				t.Error("a guest directory was created")
			}
		})
	}
	t.Run("API port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		path := filepath.Join(e.dir, "busy.hcl")
		os.WriteFile(path, []byte(strings.Replace(string(src), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", busy.Addr().String()), 1)), 0o644)
		_, errOut, code := e.loco("run", "--detach", path)
		if code == 0 || !strings.Contains(errOut, "the API cannot listen on "+busy.Addr().String()) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(e.stateDir, "good", "guests")); err == nil {
			t.Error("a guest was started although the API could not listen")
		}
	})
	t.Run("two clusters on one state directory", func(t *testing.T) {
		shared := filepath.Join(e.dir, "shared")
		a := e.spec("alpha", 1, fmt.Sprintf("  state_dir = %q\n", shared))
		b := e.spec("beta", 1, fmt.Sprintf("  state_dir = %q\n", shared))
		e.mustLoco("run", "--detach", a)
		t.Cleanup(func() { e.loco("stop", "--grace", "0s", a) })
		_, errOut, code := e.loco("run", "--detach", b)
		if code == 0 || !strings.Contains(errOut, `belongs to cluster "alpha"`) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		st := e.status(a)
		if len(st.Guests) != 1 || st.Guests[0].Name != "alpha-0" {
			t.Errorf("the first cluster was disturbed: %+v", st)
		}
	})
}
