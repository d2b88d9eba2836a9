package plan

import (
	"slices"
	"strings"
	"testing"
)

// TestWindows: a guest the stream plugin gives an X display gets QEMU's
// window and DISPLAY; the others stay headless; a runtime that cannot set
// a guest's environment is refused.
func TestWindows(t *testing.T) {
	c := load(t, "testdata/lan.hcl")
	p, err := Build(c, Inputs{StateDir: stateDir, Accel: "tcg", XDisplays: map[int]string{1: ":41"}})
	if err != nil {
		t.Fatal(err)
	}
	g0, g1 := p.Guests[0], p.Guests[1]
	if len(g0.Env) != 0 || slices.ContainsFunc(g0.Args, func(a string) bool { return strings.HasPrefix(a, "gtk") }) {
		t.Errorf("guest 0 got a window: %v %v", g0.Env, g0.Args)
	}
	if !slices.Equal(g1.Env, []string{"DISPLAY=:41"}) || !slices.ContainsFunc(g1.Args, func(a string) bool { return strings.HasPrefix(a, "gtk,full-screen=on") }) {
		t.Errorf("guest 1: env %v args %v, want QEMU's window on :41", g1.Env, g1.Args)
	}
	c.Runtime.Driver = "containerd"
	if _, err := Build(c, Inputs{StateDir: stateDir, Accel: "tcg", XDisplays: map[int]string{0: ":40"}}); err == nil || !strings.Contains(err.Error(), "does not support windows yet") {
		t.Errorf("containerd with a window: %v", err)
	}
}
