package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/runtime/process"
	"github.com/locolan/loco/core/runtime/runtimetest"
)

func TestRestartOnlyTheGuestThatDied(t *testing.T) {
	root := runtimetest.ShortDir(t)
	p := &plan.Plan{Cluster: "sv"}
	for i := 0; i < 3; i++ {
		p.Guests = append(p.Guests, runtimetest.PausedGuest(t, root, fmt.Sprintf("sv-%d", i), i, ""))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	policy := Policy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, ResetAfter: time.Minute}
	s := New(process.New(log), log, policy)
	ctx := context.Background()
	if err := s.Start(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background(), 0) })
	before := s.Status()
	for _, g := range before {
		if g.State != Running || g.PID == 0 || g.Reattached {
			t.Fatalf("after start: %+v", g)
		}
	}

	if err := syscall.Kill(before[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after []GuestStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		after = s.Status()
		if after[1].Restarts == 1 && after[1].State == Running {
			break
		}
	}
	if after[1].Restarts != 1 || after[1].PID == before[1].PID || after[1].State != Running {
		t.Fatalf("killed guest not restarted: %+v", after[1])
	}
	if after[1].LastExit == "" {
		t.Error("the exit of the killed guest was not recorded")
	}
	for _, i := range []int{0, 2} {
		if after[i].PID != before[i].PID || after[i].Restarts != 0 {
			t.Errorf("guest %d was touched: before %+v after %+v", i, before[i], after[i])
		}
	}
	sawRestart := false
	for _, e := range s.Events() {
		if e.Guest == "sv-1" && e.Message == "guest restarted" {
			sawRestart = true
		}
	}
	if !sawRestart {
		t.Errorf("no restart event: %+v", s.Events())
	}

	// A new supervisor, as after `loco` itself restarted, reattaches.
	s.Detach()
	s2 := New(process.New(log), log, policy)
	if err := s2.Start(ctx, p); err != nil {
		t.Fatal(err)
	}
	for i, g := range s2.Status() {
		if !g.Reattached || g.PID != after[i].PID {
			t.Errorf("guest %d not reattached: %+v (was pid %d)", i, g, after[i].PID)
		}
	}
	if err := s2.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, g := range s2.Status() {
		if g.State != Stopped {
			t.Errorf("after stop: %+v", g)
		}
		if syscall.Kill(g.PID, 0) == nil {
			t.Errorf("guest %s (pid %d) still running", g.Name, g.PID)
		}
	}
}

func TestGiveUpAfterLimit(t *testing.T) {
	root := runtimetest.ShortDir(t)
	pg := runtimetest.PausedGuest(t, root, "lim-0", 0, "")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := New(process.New(log), log, Policy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, ResetAfter: time.Hour, Limit: 2})
	if err := s.Start(context.Background(), &plan.Plan{Guests: []plan.Guest{pg}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background(), 0) })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st := s.Status()[0]
		if st.State == Failed {
			if st.Restarts != 2 {
				t.Errorf("gave up after %d restarts, want 2", st.Restarts)
			}
			return
		}
		if st.State == Running {
			syscall.Kill(st.PID, syscall.SIGKILL)
			// Wait for the supervisor to notice before killing again.
			for s.Status()[0].PID == st.PID && s.Status()[0].State == Running {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	t.Fatalf("never gave up: %+v", s.Status()[0])
}
