package testenv_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/locolan/loco/core/runtime/containerd"
	"github.com/locolan/loco/core/runtime/runtimetest"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
)

// TestContainerdLeavesNothing: a test that ends with a guest still running
// in its private containerd (a paused QEMU) leaves no process, shim, mount,
// directory or cgroup behind.
func TestContainerdLeavesNothing(t *testing.T) {
	var cd *testenv.Containerd
	var pid int
	var dirs []string
	const ns = "leak-test"
	t.Run("a guest left running", func(t *testing.T) {
		cd = testenv.StartContainerd(t)
		d := containerd.New(slog.New(slog.DiscardHandler), containerd.Config{Address: cd.Address, Namespace: ns})
		pg := runtimetest.PausedGuest(t, testenv.ShortTempDir(t), "leak-0", 0, "")
		g, err := d.Start(context.Background(), pg)
		if err != nil {
			t.Fatal(err)
		}
		pid = g.PID()
		if dirs = cd.NamespaceDirs(ns); len(dirs) < 2 {
			t.Errorf("while running, no runc and cgroup directories of the namespace: %v", dirs)
		}
		if len(cd.Shims()) != 1 || len(cd.Mounts()) == 0 {
			t.Errorf("while running: shims %v, mounts %v", cd.Shims(), cd.Mounts())
		}
	})
	if pid == 0 {
		t.Fatal("no guest was started")
	}
	if proc.Alive(pid) {
		t.Errorf("the guest's QEMU (pid %d) outlived the test", pid)
	}
	if s := cd.Shims(); len(s) > 0 {
		t.Errorf("shims left: %v", s)
	}
	if m := cd.Mounts(); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, d := range append(dirs, cd.Dir) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
}
