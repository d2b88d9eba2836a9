package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/spec"
)

// restoreFixture is a two-guest cluster with real overlays (qemu-img) on a
// real base disk, planned but never started, and a snapshot record "s"
// made from that plan as SaveSnapshot would.
type restoreFixture struct {
	dir, base string
	c         *spec.Cluster
	p         *plan.Plan
}

func newRestoreFixture(t *testing.T, memory int) *restoreFixture {
	t.Helper()
	f := &restoreFixture{dir: t.TempDir()}
	f.base = filepath.Join(f.dir, "base.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", f.base, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(f.dir, "vmlinuz"), []byte("kernel"), 0o644)
	f.plan(t, memory, "")
	ctx := context.Background()
	for _, g := range f.p.Guests {
		os.MkdirAll(g.Dir, 0o700)
		if err := qemu.CreateOverlay(ctx, "", g.BaseDisk, g.Overlay); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *restoreFixture) plan(t *testing.T, memory int, guestExtra string) {
	t.Helper()
	src := fmt.Sprintf(`cluster "r" {
  instances = 2
  state_dir = %q
  image {
    kernel = "vmlinuz"
    disk   = "base.qcow2"
  }
  guest {
    memory = %d
    accel  = "tcg"
    %s
  }
}
`, filepath.Join(f.dir, "state"), memory, guestExtra)
	path := filepath.Join(f.dir, "r.hcl")
	os.WriteFile(path, []byte(src), 0o644)
	l := spec.NewLoader()
	l.Environ = []string{}
	c, diags := l.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p, err := plan.Build(c, plan.Inputs{StateDir: plan.DefaultStateDir(c), Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	f.c, f.p = c, p
}

// record writes snapshot name's record for the current plan's guests.
func (f *restoreFixture) record(t *testing.T, name string) *Snapshot {
	t.Helper()
	s := &Snapshot{Name: name, Cluster: "r", Created: time.Now()}
	ids := map[string]FileIdentity{}
	for _, g := range f.p.Guests {
		img, err := imageOf(g, ids)
		if err != nil {
			t.Fatal(err)
		}
		s.Guests = append(s.Guests, SnapshotGuest{Index: g.Index, Name: g.Name, MAC: g.MAC, Overlay: g.Overlay, Image: img, Profile: qemu.HardwareProfile(g.Args)})
	}
	os.MkdirAll(snapshotsDir(f.p.StateDir), 0o700)
	if err := writeSnapshot(f.p.StateDir, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func whys(t *testing.T, choices []restoreChoice) []string {
	t.Helper()
	var out []string
	for _, ch := range choices {
		if ch.guest.Name != "" {
			t.Errorf("guest %s would be restored: %v", ch.report.Guest, ch.guest.Args)
		}
		out = append(out, ch.report.Why)
	}
	return out
}

// TestPlanRestoresColdFallbacks: a state that is missing or unreadable
// makes the guest boot cold, and the report says why.
func TestPlanRestoresColdFallbacks(t *testing.T) {
	ctx := context.Background()
	f := newRestoreFixture(t, 96)

	ch, err := planRestores(ctx, f.c, f.p, "")
	if err != nil || len(ch) != 0 {
		t.Fatalf("no snapshot asked for: %v %v", ch, err)
	}
	ch, err = planRestores(ctx, f.c, f.p, "nope")
	if err != nil {
		t.Fatal(err)
	}
	if w := whys(t, ch); len(w) != 2 || !strings.Contains(w[0], `there is no snapshot "nope"`) {
		t.Errorf("missing record: %q", w)
	}

	f.record(t, "s")
	// The record is there, but neither overlay holds its state.
	ch, _ = planRestores(ctx, f.c, f.p, "s")
	if w := whys(t, ch); len(w) != 2 || !strings.Contains(w[0], `no longer holds snapshot "s"`) {
		t.Errorf("state not in the overlays: %q", w)
	}
	// A disk-only snapshot of that name is no memory state.
	if out, err := exec.Command("qemu-img", "snapshot", "-c", "s", f.p.Guests[0].Overlay).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	ch, _ = planRestores(ctx, f.c, f.p, "s")
	if w := whys(t, ch); !strings.Contains(w[0], "disk only") {
		t.Errorf("disk-only snapshot: %q", w)
	}
	// An overlay that is gone.
	os.Remove(f.p.Guests[1].Overlay)
	ch, _ = planRestores(ctx, f.c, f.p, "s")
	if w := whys(t, ch); !strings.Contains(w[1], "is gone") {
		t.Errorf("overlay gone: %q", w)
	}
	// A guest the snapshot does not have.
	s := f.record(t, "s")
	s.Guests = s.Guests[:1]
	writeSnapshot(f.p.StateDir, s)
	ch, _ = planRestores(ctx, f.c, f.p, "s")
	if w := whys(t, ch); !strings.Contains(w[1], "has no state for it") {
		t.Errorf("guest not in the snapshot: %q", w)
	}
	// A corrupt record.
	os.WriteFile(snapshotPath(f.p.StateDir, "s"), []byte(`{"name": "s", "guests": [`), 0o600)
	ch, _ = planRestores(ctx, f.c, f.p, "s")
	if w := whys(t, ch); len(w) != 2 || !strings.Contains(w[0], "is corrupt") || !strings.Contains(w[1], "is corrupt") {
		t.Errorf("corrupt record: %q", w)
	}
	// start_from in the spec asks as --from does, per guest.
	f.plan(t, 96, `start_from = "nope"`)
	ch, _ = planRestores(ctx, f.c, f.p, "")
	if w := whys(t, ch); len(w) != 2 || !strings.Contains(w[1], `no snapshot "nope"`) {
		t.Errorf("start_from: %q", w)
	}
}

// TestPlanRestoresRefusals: a snapshot of another machine, image or guest
// is refused before anything starts.
func TestPlanRestoresRefusals(t *testing.T) {
	ctx := context.Background()
	f := newRestoreFixture(t, 96)
	f.record(t, "s")

	f.plan(t, 128, "")
	_, err := planRestores(ctx, f.c, f.p, "s")
	if !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "r-0: saved with another hardware profile: then -m 96; now -m 128") {
		t.Errorf("other memory: %v", err)
	}

	f.plan(t, 96, "")
	later := time.Now().Add(time.Hour)
	os.Chtimes(f.base, later, later)
	_, err = planRestores(ctx, f.c, f.p, "s")
	if !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "saved against another image: disk "+f.base+" is not the file it was saved against (modified") {
		t.Errorf("base image touched: %v", err)
	}

	f.record(t, "s")
	os.WriteFile(filepath.Join(f.dir, "vmlinuz"), []byte("another kernel"), 0o644)
	_, err = planRestores(ctx, f.c, f.p, "s")
	if !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "kernel "+filepath.Join(f.dir, "vmlinuz")) || !strings.Contains(err.Error(), "other content") {
		t.Errorf("other kernel: %v", err)
	}

	s := f.record(t, "s")
	s.Guests[1].MAC = "52:00:00:00:00:09"
	writeSnapshot(f.p.StateDir, s)
	_, err = planRestores(ctx, f.c, f.p, "s")
	if !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "MAC 52:00:00:00:00:09") {
		t.Errorf("another guest's state: %v", err)
	}
}

func TestProfileDiff(t *testing.T) {
	if d := profileDiff([]string{"-m 96", "-smp 1"}, []string{"-m 96", "-smp 1"}); d != "" {
		t.Errorf("equal: %q", d)
	}
	if d := profileDiff([]string{"-m 96", "-smp 1"}, []string{"-smp 1", "-m 96"}); !strings.Contains(d, "order") {
		t.Errorf("reordered: %q", d)
	}
	if d := profileDiff([]string{"-device e1000"}, []string{"-device pcnet", "-usb"}); d != "then -device e1000; now -device pcnet -usb" {
		t.Errorf("diff: %q", d)
	}
}

// TestListAndDeleteSnapshot: delete removes the state from every stopped
// guest's overlay (qemu-img) and the record; list counts only states that
// are still there with memory.
func TestListAndDeleteSnapshot(t *testing.T) {
	ctx := context.Background()
	f := newRestoreFixture(t, 96)
	b, _ := json.Marshal(State{Cluster: "r", Plan: f.p})
	os.WriteFile(filepath.Join(f.p.StateDir, "state.json"), b, 0o600)
	f.record(t, "s")
	for _, g := range f.p.Guests {
		if out, err := exec.Command("qemu-img", "snapshot", "-c", "s", g.Overlay).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	list, err := ListSnapshots(ctx, f.p.StateDir)
	if err != nil || len(list) != 1 || list[0].Name != "s" || len(list[0].Guests) != 2 || list[0].Present != 0 || list[0].Base != f.base {
		t.Fatalf("list: %+v %v", list, err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := DeleteSnapshot(ctx, log, f.p.StateDir, "s"); err != nil {
		t.Fatal(err)
	}
	for _, g := range f.p.Guests {
		if s, _ := qemu.ImageSnapshots(ctx, "", g.Overlay); len(s) != 0 {
			t.Errorf("%s still holds %+v", g.Name, s)
		}
	}
	if list, _ := ListSnapshots(ctx, f.p.StateDir); len(list) != 0 {
		t.Errorf("after delete: %+v", list)
	}
	if err := DeleteSnapshot(ctx, log, f.p.StateDir, "s"); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("deleting it again: %v", err)
	}
}
