// Package locorun is the end-to-end harness of loco's tests: it writes
// cluster specs for the test guest, runs the real loco binary on them with
// a private state directory, and talks to the guests (serial log, agent,
// API) while they run. Every cluster a test started is stopped and
// destroyed when the test ends, passed or failed. It is its own package,
// not part of testenv, because it imports core/cluster, whose packages'
// own tests import testenv.
package locorun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/testenv"
)

// Harness drives the real loco binary against real QEMU test guests (TCG).
type Harness struct {
	T        testing.TB
	Bin      string // the loco binary
	Guest    string // the test guest's build directory
	StateDir string // LOCO_STATE_DIR of every loco this harness runs
	Dir      string // scratch directory for specs, disks and caches
	Specs    []string
}

// New builds the binaries (once per test process), finds the test guest and
// makes a scratch directory whose clusters are destroyed at the end.
func New(t testing.TB) *Harness {
	t.Helper()
	h := &Harness{T: t, Bin: filepath.Join(testenv.Binaries(t), "loco"), Guest: testenv.TestGuest(t), Dir: testenv.ShortTempDir(t)}
	h.StateDir = filepath.Join(h.Dir, "state")
	t.Cleanup(func() {
		// Whatever a failed test left running: stop it hard, before its
		// state directory is removed under it.
		for _, s := range h.Specs {
			h.Run("stop", "--grace", "0s", "--destroy", s)
		}
	})
	return h
}

// Spec writes NAME.hcl for n test guests (128 MiB, TCG, API on a free
// loopback port) with extra blocks inside the cluster, and returns its path.
func (h *Harness) Spec(name string, n int, extra string) string {
	path := filepath.Join(h.Dir, name+".hcl")
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
`, name, n, filepath.Join(h.Guest, "vmlinuz"), filepath.Join(h.Guest, "initrd.img"), filepath.Join(h.Guest, "base.qcow2"), extra)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		h.T.Fatal(err)
	}
	h.Track(path)
	return path
}

// Track makes the harness destroy the cluster of a spec it did not write
// itself when the test ends.
func (h *Harness) Track(spec string) {
	if !slices.Contains(h.Specs, spec) {
		h.Specs = append(h.Specs, spec)
	}
}

// Run runs loco with args and returns what it printed and its exit code.
func (h *Harness) Run(args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(h.Bin, args...)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+h.StateDir, "XDG_CACHE_HOME="+filepath.Join(h.Dir, "cache"))
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.T.Fatalf("running loco %v: %v", args, err)
	}
	return o.String(), er.String(), code
}

// MustRun is Run that fails the test unless loco exits 0.
func (h *Harness) MustRun(args ...string) string {
	h.T.Helper()
	out, errOut, code := h.Run(args...)
	if code != 0 {
		h.T.Fatalf("loco %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// Status is what `loco status --json` prints.
type Status struct {
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

// Status runs `loco status --json` on spec.
func (h *Harness) Status(spec string) Status {
	h.T.Helper()
	var st Status
	if err := json.Unmarshal([]byte(h.MustRun("status", "--json", spec)), &st); err != nil {
		h.T.Fatal(err)
	}
	return st
}

// API is a client of the running loco's API for cluster cl.
func (h *Harness) API(t testing.TB, cl string) *client.Client {
	t.Helper()
	base, tok, err := cluster.APIEndpoint(filepath.Join(h.StateDir, cl))
	if err != nil {
		t.Fatal(err)
	}
	return client.New(base, tok, nil)
}

// GuestDir is guest i's state directory (serial log, sockets, overlay).
func (h *Harness) GuestDir(cluster string, i int) string {
	return filepath.Join(h.StateDir, cluster, "guests", fmt.Sprint(i))
}

// ReadyCount is how many times guest i has printed LOCO-READY: once per boot.
func (h *Harness) ReadyCount(cluster string, i int) int {
	b, _ := os.ReadFile(filepath.Join(h.GuestDir(cluster, i), "serial.log"))
	return strings.Count(string(b), "LOCO-READY name="+fmt.Sprintf("%s-%d", cluster, i))
}

// WaitReady waits until guest i has printed LOCO-READY want times.
func (h *Harness) WaitReady(cluster string, i, want int) {
	h.T.Helper()
	deadline := time.Now().Add(3 * time.Minute) // TCG on two busy cores
	for h.ReadyCount(cluster, i) < want {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(h.GuestDir(cluster, i), "serial.log"))
			h.T.Fatalf("guest %s-%d printed LOCO-READY %d times, want %d; serial log:\n%s", cluster, i, h.ReadyCount(cluster, i), want, b)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Agent sends one command to the test agent on the guest's second serial
// port and returns its one-line answer, retrying while the guest boots.
func (h *Harness) Agent(cluster string, i int, command string) string {
	h.T.Helper()
	var lastErr error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		reply, err := testenv.AskAgent(filepath.Join(h.GuestDir(cluster, i), "console.sock"), command, 20*time.Second)
		if err == nil {
			return reply
		}
		lastErr = err
	}
	h.T.Fatalf("agent of %s-%d did not answer %q: %v", cluster, i, command, lastErr)
	return ""
}
