package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestKeepSysmonAwake(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"A=1"}, []string{"A=1", "GODEBUG=" + schedtraceOff}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "B=2"}, []string{"GODEBUG=" + schedtraceOff, "B=2"}, true},
		{"other settings kept", []string{"GODEBUG=gctrace=1"}, []string{"GODEBUG=gctrace=1," + schedtraceOff}, true},
		{"the user's schedtrace wins", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, []string{"GODEBUG=gctrace=1,schedtrace=1000"}, false},
		{"already re-executed", []string{"GODEBUG=" + schedtraceOff}, []string{"GODEBUG=" + schedtraceOff}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, changed := keepSysmonAwake(c.env)
			if changed != c.changed || !slices.Equal(got, c.want) {
				t.Fatalf("keepSysmonAwake(%q) = %q, %v; want %q, %v", c.env, got, changed, c.want, c.changed)
			}
		})
	}
}

func TestGoProcs(t *testing.T) {
	for _, c := range []struct {
		env string
		n   int
		set bool
	}{{"", 1, true}, {"4", 0, false}, {"1", 0, false}} {
		if n, set := goProcs(c.env); n != c.n || set != c.set {
			t.Errorf("goProcs(%q) = %d, %v; want %d, %v", c.env, n, set, c.n, c.set)
		}
	}
}

// TestPluginReexecsWithSysmonAwake runs the real binary: once started, its
// own environment has the setting, under the same pid (so go-plugin's
// handle on the process still holds), and it still serves.
func TestPluginReexecsWithSysmonAwake(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "loco-plugin-stream-webrtc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line := make([]byte, 256)
	n, err := out.Read(line)
	if err != nil || !strings.Contains(string(line[:n]), "127.0.0.1:") {
		t.Fatalf("the plugin printed %q (%v), want its address", line[:n], err)
	}
	var environ []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if environ, err = os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "environ")); err == nil &&
			strings.Contains(string(environ), "GODEBUG=gctrace=0,"+schedtraceOff) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the plugin's environment has no %s: %q", schedtraceOff, environ)
}
