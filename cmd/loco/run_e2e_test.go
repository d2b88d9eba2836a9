package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestForegroundRunAndLogs: `loco run` in the foreground shows the guests,
// `loco logs` prints a guest's serial console, and Ctrl-C (SIGINT) powers
// the guests down, keeps their disks and exits 0.
func TestForegroundRunAndLogs(t *testing.T) {
	e := newE2E(t)
	spec := e.spec("fg", 1, "")
	cmd := exec.Command(e.bin, "run", spec)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+e.stateDir, "XDG_CACHE_HOME="+filepath.Join(e.dir, "cache"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	e.waitReady("fg", 0, 1)
	if !regexp.MustCompile(`fg-0\s+running`).MatchString(out.String()) {
		t.Errorf("no status table with the running guest:\n%s", out.String())
	}

	logs := e.mustLoco("logs", "fg-0")
	if !strings.Contains(logs, "LOCO-READY name=fg-0") {
		t.Errorf("loco logs fg-0:\n%s", logs)
	}
	// The guest is still booting and its log grows: the later read must
	// begin with the earlier one.
	if byIndex := e.mustLoco("logs", "--cluster", "fg", "0"); !strings.HasPrefix(byIndex, logs) {
		t.Errorf("logs by index are not the logs by name (and what came since):\nby name:\n%s\nby index:\n%s", logs, byIndex)
	}
	if _, errOut, code := e.loco("logs", "fg-7"); code == 0 || !strings.Contains(errOut, "no instance 7") {
		t.Errorf("logs of a missing guest: exit %d, %s", code, errOut)
	}

	// The power button is the third input device the agent opens (after
	// keyboard and mouse); READY is printed before the agent starts.
	serial := filepath.Join(e.guestDir("fg", 0), "serial.log")
	for deadline := time.Now().Add(time.Minute); strings.Count(string(must(os.ReadFile(serial))), "LOCO-AGENT input") < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not open three input devices:\n%s", must(os.ReadFile(serial)))
		}
	}
	pid := e.status(spec).Guests[0].PID
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("loco run exited with %v:\n%s", err, out.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("loco run did not exit after SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "all guests stopped; disks kept") {
		t.Errorf("output:\n%s", out.String())
	}
	if alive(pid) {
		t.Errorf("guest %d still runs after Ctrl-C", pid)
	}
	if !strings.Contains(string(must(os.ReadFile(serial))), "LOCO-POWEROFF") {
		t.Error("the guest was not powered down through ACPI")
	}
	if _, err := os.Stat(filepath.Join(e.guestDir("fg", 0), "disk.qcow2")); err != nil {
		t.Errorf("disk lost: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
