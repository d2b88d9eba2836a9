package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
)

// TestForegroundRunAndLogs: `loco run` in the foreground shows the guests,
// `loco logs` prints a guest's serial console, and Ctrl-C (SIGINT) powers
// the guests down, keeps their disks and exits 0.
func TestForegroundRunAndLogs(t *testing.T) {
	e := newE2E(t)
	spec := e.Spec("fg", 1, "")
	cmd := exec.Command(e.Bin, "run", spec)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+e.StateDir, "XDG_CACHE_HOME="+filepath.Join(e.Dir, "cache"))
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	e.WaitReady("fg", 0, 1)
	if !regexp.MustCompile(`fg-0\s+running`).MatchString(out.String()) {
		t.Errorf("no status table with the running guest:\n%s", out.String())
	}

	logs := e.MustRun("logs", "fg-0")
	if !strings.Contains(logs, "LOCO-READY name=fg-0") {
		t.Errorf("loco logs fg-0:\n%s", logs)
	}
	// The guest is still booting and its log grows: the later read must
	// begin with the earlier one.
	if byIndex := e.MustRun("logs", "--cluster", "fg", "0"); !strings.HasPrefix(byIndex, logs) {
		t.Errorf("logs by index are not the logs by name (and what came since):\nby name:\n%s\nby index:\n%s", logs, byIndex)
	}
	if _, errOut, code := e.Run("logs", "fg-7"); code == 0 || !strings.Contains(errOut, "no instance 7") {
		t.Errorf("logs of a missing guest: exit %d, %s", code, errOut)
	}

	// The power button is the third input device the agent opens (after
	// keyboard and mouse); READY is printed before the agent starts.
	serial := filepath.Join(e.GuestDir("fg", 0), "serial.log")
	for deadline := time.Now().Add(time.Minute); strings.Count(string(must(os.ReadFile(serial))), "LOCO-AGENT input") < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not open three input devices:\n%s", must(os.ReadFile(serial)))
		}
	}
	pid := e.Status(spec).Guests[0].PID
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
	if _, err := os.Stat(filepath.Join(e.GuestDir("fg", 0), "disk.qcow2")); err != nil {
		t.Errorf("disk lost: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRunSurvivesItsOutput: `loco run | head -1` and a closed terminal.
// loco's stdout and stderr are a pipe whose reader exits after the first
// line; loco keeps supervising the guest (every later write fails with
// EPIPE), and SIGHUP then powers the guest down like Ctrl-C. Before, the
// first write to the closed pipe killed loco with SIGPIPE, and SIGHUP
// killed it outright: either way the guest ran on with nobody watching.
func TestRunSurvivesItsOutput(t *testing.T) {
	e := newE2E(t)
	spec := e.Spec("pipe", 1, "")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A closed terminal is SIGHUP at its default disposition. A test run
	// started under nohup hands every child SIGHUP ignored, and loco then
	// rightly keeps it ignored; env resets it, and execs loco under the
	// same pid.
	cmd := exec.Command("env", "--default-signal=HUP", e.Bin, "run", spec)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+e.StateDir, "XDG_CACHE_HOME="+filepath.Join(e.Dir, "cache"))
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	// What `head -1` does: read a line, exit.
	first := make([]byte, 1)
	var line []byte
	for {
		if _, err := r.Read(first); err != nil {
			t.Fatalf("no first line from loco run: %v (%q)", err, line)
		}
		if line = append(line, first[0]); first[0] == '\n' {
			break
		}
	}
	r.Close()
	t.Logf("the reader took %q and left", line)

	booted := testenv.WaitFor(t, "the guest to boot", 3*time.Minute, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("loco run died with its reader (%v); guests: %+v", err, e.Status(spec).Guests)
		default:
		}
		return e.ReadyCount("pipe", 0) >= 1
	})
	t.Logf("the guest booted %v after the reader left, under a loco that kept running", booted.Round(time.Millisecond))
	st := e.Status(spec)
	if len(st.Guests) != 1 || !st.Guests[0].Running {
		t.Fatalf("status after the reader left: %+v", st)
	}
	if st.LocoPID != cmd.Process.Pid {
		t.Fatalf("the guest is not supervised by this loco run (pid %d): status says loco pid %d", cmd.Process.Pid, st.LocoPID)
	}
	guest := st.Guests[0].PID
	// The agent listens to the power button once it has opened its third
	// input device (see TestForegroundRunAndLogs).
	serial := filepath.Join(e.GuestDir("pipe", 0), "serial.log")
	for deadline := time.Now().Add(time.Minute); strings.Count(string(must(os.ReadFile(serial))), "LOCO-AGENT input") < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not open three input devices:\n%s", must(os.ReadFile(serial)))
		}
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("loco run exited with %v after SIGHUP", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("loco run did not exit after SIGHUP")
	}
	if alive(guest) {
		t.Errorf("guest %d runs on after loco exited: orphaned", guest)
	}
	if !strings.Contains(string(must(os.ReadFile(serial))), "LOCO-POWEROFF") {
		t.Error("the guest was not powered down through ACPI")
	}
}
