package containerd

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/runtime/runtimetest"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
)

func TestConformance(t *testing.T) {
	cd := testenv.StartContainerd(t)
	runtimetest.Run(t, func(log *slog.Logger) runtime.Runtime {
		return New(log, Config{Address: cd.Address, Namespace: "loco-test", Cluster: "rt"})
	})
}

// TestDeadGuestRemovedOnFind: a guest whose QEMU died while no loco
// watched it (its driver gone) leaves a container with a stopped task;
// the next loco's Find does not reattach and deletes it, so `loco stop`
// leaves nothing either way.
func TestDeadGuestRemovedOnFind(t *testing.T) {
	cd := testenv.StartContainerd(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := Config{Address: cd.Address, Namespace: "dead-test", Cluster: "rt"}
	pg := runtimetest.PausedGuest(t, testenv.ShortTempDir(t), "rt-0", 0, "")
	ctx := context.Background()
	d1 := New(log, cfg)
	g, err := d1.Start(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	d1.Close() // as if loco died: nobody cleans up after the task
	syscall.Kill(g.PID(), syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); proc.Alive(g.PID()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("QEMU survived SIGKILL")
		}
	}
	c, err := containerd.New(cd.Address, containerd.WithDefaultNamespace("dead-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, "dead-test")
	cs, _ := c.Containers(nctx)
	if len(cs) != 1 {
		t.Fatalf("%d containers after the unwatched death, want the dead one", len(cs))
	}
	// QEMU is gone before its shim has told containerd: until then the
	// task still reads "running", which is a different case (a container
	// that runs but whose QMP does not answer). Wait for the stopped task
	// this test is about.
	task, err := cs[0].Task(nctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := task.Status(nctx)
		if err == nil && st.Status == containerd.Stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd still reports the task %v (%v) 30 s after QEMU died", st.Status, err)
		}
	}
	if _, ok, err := New(log, cfg).Find(ctx, pg); ok || err != nil {
		t.Fatalf("Find of a dead guest: ok=%v err=%v", ok, err)
	}
	if cs, _ := c.Containers(nctx); len(cs) != 0 {
		t.Errorf("%d containers left after Find", len(cs))
	}
}
