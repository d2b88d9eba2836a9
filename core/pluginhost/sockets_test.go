package pluginhost

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoSocketOutlivesItsPlugin: a plugin's go-plugin socket is gone after
// the plugin is SIGKILLed (and restarted), after its host closes, and after
// its host is SIGKILLed, once the next host starts. Before, each unclean
// death left a socket in the temp directory.
func TestNoSocketOutlivesItsPlugin(t *testing.T) {
	gone := func(t *testing.T, what, path string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, err := os.Lstat(path); os.IsNotExist(err) {
				return
			}
		}
		t.Errorf("%s: %s is still there", what, path)
	}
	t.Run("plugin SIGKILLed", func(t *testing.T) {
		f := newFixture(t)
		set, diags, _ := f.load(t, "  network \"test\" {\n    subnet = \"10.5.0.0/24\"\n  }\n")
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		p := set.Get("network")
		old, oldPID := p.socketPath(), p.PID()
		if !strings.Contains(old, socketDirPrefix) {
			t.Errorf("socket %s is not in a host's socket directory", old)
		}
		if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); p.PID() == oldPID || p.PID() == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the plugin was not restarted")
			}
		}
		gone(t, "after the plugin was SIGKILLed", old)
		gone(t, "after the plugin was SIGKILLed", filepath.Dir(old))
		now := p.socketPath()
		f.host.Close()
		gone(t, "after the host closed", now)
		gone(t, "after the host closed", filepath.Dir(filepath.Dir(now)))
	})
	t.Run("host SIGKILLed", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644)
		path := filepath.Join(dir, "c.hcl")
		os.WriteFile(path, []byte("cluster \"t\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n  network \"test\" {\n    subnet = \"10.6.0.0/24\"\n  }\n}\n"), 0o644)
		cmd := exec.Command(os.Args[0], "-test.run=^$", path)
		cmd.Env = append(os.Environ(), "LOCO_PLUGINHOST_CHILD="+pluginDir)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if f := strings.Fields(line); err != nil || len(f) != 3 || f[0] != "PID" {
			t.Fatalf("child host said %q (%v)", line, err)
		}
		go io.Copy(io.Discard, stdout)
		sock := strings.Fields(line)[2]
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		pid, _ := strconv.Atoi(strings.Fields(line)[1])
		waitGone(t, pid)
		if _, err := os.Lstat(sock); err != nil {
			t.Fatalf("the dead host's plugin socket %s vanished by itself (%v): nothing to test", sock, err)
		}
		h := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
		h.Close()
		gone(t, "after the next host started", filepath.Dir(filepath.Dir(sock)))
	})
}
