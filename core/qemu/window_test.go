package qemu

import (
	"slices"
	"strings"
	"testing"
)

// TestArgsWindow: a guest with an X display gets QEMU's GTK window, full
// screen, instead of the headless display, keeps its VNC socket, and only
// a local display is accepted.
func TestArgsWindow(t *testing.T) {
	m := baseMachine()
	m.VNC = "unix:/tmp/g1/vnc.sock"
	m.XDisplay = ":41"
	args, err := m.Args()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(args, "-display")
	if i < 0 || !strings.HasPrefix(args[i+1], "gtk,full-screen=on,") || slices.Contains(args, "dbus,p2p=yes") {
		t.Errorf("display args: %v", args)
	}
	if j := slices.Index(args, "-vnc"); j < 0 || args[j+1] != "unix:/tmp/g1/vnc.sock" {
		t.Errorf("the window dropped VNC: %v", args)
	}
	for _, bad := range []string{"remote:0", ":1.0", "localhost:10", ":", ":12345"} {
		m.XDisplay = bad
		if _, err := m.Args(); err == nil || !strings.Contains(err.Error(), "local display") {
			t.Errorf("x display %q: %v, want refused", bad, err)
		}
	}
}
