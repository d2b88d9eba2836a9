package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv/locorun"
)

// e2e is the shared harness (internal/testenv/locorun) plus the checks
// this package's tests add to it in their own files.
type e2e struct {
	*locorun.Harness
}

func newE2E(t testing.TB) *e2e { return &e2e{locorun.New(t)} }

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
	spec := e.Spec("lan", 3, "")
	base := filepath.Join(e.Guest, "base.qcow2")
	baseSum := fileSum(t, base)

	out := e.MustRun("run", "--detach", spec)
	if !strings.Contains(out, "accelerator tcg") {
		t.Errorf("run does not say which accelerator it chose:\n%s", out)
	}
	for i := 0; i < 3; i++ {
		e.WaitReady("lan", i, 1)
	}
	st := e.Status(spec)
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
	human := e.MustRun("status", spec)
	if strings.Count(human, "running") != 3 || !strings.Contains(human, "tcg") {
		t.Errorf("status table:\n%s", human)
	}

	t.Run("API serves the running guests behind its token", func(t *testing.T) {
		base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "lan"))
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
		if got := e.Agent("lan", 0, "disk-write survives-stop"); !strings.HasPrefix(got, "OK") {
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
		e.MustRun("run", "--detach", spec)
		st2 := e.Status(spec)
		for i, g := range st2.Guests {
			if g.PID != pids[i] || !g.Running {
				t.Errorf("guest %d: pid %d running %v, want the same pid %d", i, g.PID, g.Running, pids[i])
			}
		}
		time.Sleep(2 * time.Second)
		for i := 0; i < 3; i++ {
			if n := e.ReadyCount("lan", i); n != 1 {
				t.Errorf("guest %d printed LOCO-READY %d times: it rebooted", i, n)
			}
		}
	})

	t.Run("SIGKILLed QEMU is restarted, others untouched", func(t *testing.T) {
		if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.WaitReady("lan", 1, 2)
		st3 := e.Status(spec)
		if st3.Guests[1].PID == pids[1] || !st3.Guests[1].Running {
			t.Errorf("guest 1 not restarted: %+v", st3.Guests[1])
		}
		for _, i := range []int{0, 2} {
			if st3.Guests[i].PID != pids[i] || e.ReadyCount("lan", i) != 1 {
				t.Errorf("guest %d was disturbed: %+v, ready %d", i, st3.Guests[i], e.ReadyCount("lan", i))
			}
		}
	})

	t.Run("marker survives stop and run", func(t *testing.T) {
		e.MustRun("stop", spec)
		for i, pid := range pids {
			if i != 1 && alive(pid) {
				t.Errorf("guest %d still runs after stop", i)
			}
		}
		if _, err := os.Stat(filepath.Join(e.GuestDir("lan", 0), "disk.qcow2")); err != nil {
			t.Fatalf("overlay gone after a plain stop: %v", err)
		}
		before := e.ReadyCount("lan", 0)
		e.MustRun("run", "--detach", spec)
		e.WaitReady("lan", 0, before+1)
		if got := e.Agent("lan", 0, "disk-read"); got != "OK survives-stop" {
			t.Errorf("disk-read after stop and run: %q", got)
		}
	})

	t.Run("stop --destroy removes the overlays and nothing else", func(t *testing.T) {
		e.MustRun("stop", "--destroy", spec)
		for i := 0; i < 3; i++ {
			d := e.GuestDir("lan", i)
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
	good := e.Spec("good", 1, "")
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
			path := filepath.Join(e.Dir, "bad.hcl")
			os.WriteFile(path, []byte(s), 0o644)
			_, errOut, code := e.Run("run", "--detach", path)
			if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "bad.hcl:") {
				t.Errorf("exit %d, stderr:\n%s\nwant %q with a file position", code, errOut, tc.want)
			}
			if _, err := os.Stat(filepath.Join(e.StateDir, "good", "guests")); err == nil {
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
		path := filepath.Join(e.Dir, "busy.hcl")
		os.WriteFile(path, []byte(strings.Replace(string(src), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", busy.Addr().String()), 1)), 0o644)
		_, errOut, code := e.Run("run", "--detach", path)
		if code == 0 || !strings.Contains(errOut, "the API cannot listen on "+busy.Addr().String()) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(e.StateDir, "good", "guests")); err == nil {
			t.Error("a guest was started although the API could not listen")
		}
	})
	t.Run("two clusters on one state directory", func(t *testing.T) {
		shared := filepath.Join(e.Dir, "shared")
		a := e.Spec("alpha", 1, fmt.Sprintf("  state_dir = %q\n", shared))
		b := e.Spec("beta", 1, fmt.Sprintf("  state_dir = %q\n", shared))
		e.MustRun("run", "--detach", a)
		t.Cleanup(func() { e.Run("stop", "--grace", "0s", a) })
		_, errOut, code := e.Run("run", "--detach", b)
		if code == 0 || !strings.Contains(errOut, `belongs to cluster "alpha"`) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		st := e.Status(a)
		if len(st.Guests) != 1 || st.Guests[0].Name != "alpha-0" {
			t.Errorf("the first cluster was disturbed: %+v", st)
		}
	})
}
