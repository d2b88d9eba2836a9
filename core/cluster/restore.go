package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/spec"
)

// StartReport says how one guest came up in this run, when a snapshot was
// asked for (loco run --from, or start_from in the spec).
type StartReport struct {
	Guest string `json:"guest"`
	// From is the snapshot asked for.
	From     string `json:"from"`
	Restored bool   `json:"restored"`
	// Reattached: the guest was already running and was left as it is.
	Reattached bool `json:"reattached,omitempty"`
	// Took is from starting QEMU to its QMP answering, for a restore: by
	// then the state is loaded and the guest runs.
	Took time.Duration `json:"took_ns"`
	// Why says why the guest booted cold instead.
	Why string `json:"why,omitempty"`
}

func (r StartReport) String() string {
	if r.Restored {
		return fmt.Sprintf("guest %s: restored from snapshot %q in %.2f s", r.Guest, r.From, r.Took.Seconds())
	}
	if r.Reattached {
		return fmt.Sprintf("guest %s: already running; reattached as it is, not restored", r.Guest)
	}
	return fmt.Sprintf("guest %s: cold boot: %s", r.Guest, r.Why)
}

// ErrSnapshotRefused is wrapped when a snapshot does not fit the guests it
// would be restored into.
var ErrSnapshotRefused = errors.New("snapshot refused")

// restoreChoice is what planRestores decides for one guest.
type restoreChoice struct {
	report StartReport
	guest  plan.Guest // with -loadvm, when it is to be restored
}

// planRestores decides, for every guest the run wants started from a
// snapshot (from, else the guest's start_from), whether it can be: its own
// state must be there, in its own overlay, saved with the same MAC, the
// same hardware profile and the same image. A state that is missing or
// unreadable means a cold boot (said in the report); one that does not fit
// refuses the whole run, because restoring it would give a guest another
// machine's memory, and booting cold instead would silently lose the state.
func planRestores(ctx context.Context, c *spec.Cluster, p *plan.Plan, from string) ([]restoreChoice, error) {
	var choices []restoreChoice
	var refusals []string
	snaps := map[string]*Snapshot{}
	snapErrs := map[string]error{}
	ids := map[string]FileIdentity{}
	for _, g := range p.Guests {
		name := from
		if name == "" {
			name = c.GuestFor(g.Index).StartFrom
		}
		if name == "" {
			continue
		}
		ch := restoreChoice{report: StartReport{Guest: g.Name, From: name}}
		cold := func(format string, a ...any) {
			ch.report.Why = fmt.Sprintf(format, a...)
			choices = append(choices, ch)
		}
		s, ok := snaps[name]
		if !ok {
			s, snapErrs[name] = ReadSnapshot(p.StateDir, name)
			snaps[name] = s
		}
		if err := snapErrs[name]; err != nil {
			if errors.Is(err, ErrNoSnapshot) {
				cold("there is no snapshot %q", name)
			} else {
				cold("%v", err)
			}
			continue
		}
		i := slices.IndexFunc(s.Guests, func(sg SnapshotGuest) bool { return sg.Index == g.Index })
		if i < 0 {
			cold("snapshot %q has no state for it (it was not running when the snapshot was saved)", name)
			continue
		}
		sg := s.Guests[i]
		if sg.Name != g.Name || sg.MAC != g.MAC {
			refusals = append(refusals, fmt.Sprintf("%s: the snapshot's guest %d is %s with MAC %s, this one is %s with MAC %s", g.Name, g.Index, sg.Name, sg.MAC, g.Name, g.MAC))
			continue
		}
		img, err := imageOf(g, ids)
		if err != nil {
			return nil, err
		}
		if why := imageDiff(sg.Image, img); why != "" {
			refusals = append(refusals, fmt.Sprintf("%s: saved against another image: %s", g.Name, why))
			continue
		}
		if why := profileDiff(sg.Profile, qemu.HardwareProfile(g.Args)); why != "" {
			refusals = append(refusals, fmt.Sprintf("%s: saved with another hardware profile: %s", g.Name, why))
			continue
		}
		if _, err := os.Stat(g.Overlay); err != nil {
			cold("its disk overlay %s, which holds the snapshot, is gone", g.Overlay)
			continue
		}
		states, err := qemu.ImageSnapshots(ctx, "", g.Overlay)
		if err != nil {
			cold("its overlay cannot be read: %v", err)
			continue
		}
		j := slices.IndexFunc(states, func(is qemu.ImageSnapshot) bool { return is.Name == name })
		switch {
		case j < 0:
			cold("its overlay %s no longer holds snapshot %q", g.Overlay, name)
			continue
		case states[j].VMStateSize == 0:
			cold("snapshot %q in its overlay has the disk only, no memory state", name)
			continue
		}
		ch.guest = g
		ch.guest.Args = append(slices.Clone(g.Args), qemu.LoadVMArgs(name)...)
		choices = append(choices, ch)
	}
	if len(refusals) > 0 {
		return nil, fmt.Errorf("%w:\n  %s\nThe guests were not started. Start them without --from (or start_from) to boot cold, or save the snapshot again from this spec", ErrSnapshotRefused, strings.Join(refusals, "\n  "))
	}
	return choices, nil
}

// imageDiff says how the image files differ from those a snapshot was
// saved against, or "".
func imageDiff(then, now []FileIdentity) string {
	var diffs []string
	for _, t := range then {
		i := slices.IndexFunc(now, func(n FileIdentity) bool { return n.Role == t.Role })
		if i < 0 {
			diffs = append(diffs, fmt.Sprintf("it was saved with %s %s, the spec now has no %s", t.Role, t.Path, t.Role))
			continue
		}
		n := now[i]
		var what []string
		if n.Size != t.Size {
			what = append(what, fmt.Sprintf("size %d then, %d now", t.Size, n.Size))
		}
		if !n.ModTime.Equal(t.ModTime) {
			what = append(what, fmt.Sprintf("modified %s then, %s now", t.ModTime.Format(time.RFC3339), n.ModTime.Format(time.RFC3339)))
		}
		if n.Sample != t.Sample {
			what = append(what, "other content")
		}
		if len(what) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s %s is not the file it was saved against (%s)", t.Role, n.Path, strings.Join(what, ", ")))
		}
	}
	for _, n := range now {
		if !slices.ContainsFunc(then, func(t FileIdentity) bool { return t.Role == n.Role }) {
			diffs = append(diffs, fmt.Sprintf("the spec now has %s %s, it was saved without one", n.Role, n.Path))
		}
	}
	return strings.Join(diffs, "; ")
}

// profileDiff says how two hardware profiles differ, or "".
func profileDiff(then, now []string) string {
	if slices.Equal(then, now) {
		return ""
	}
	var gone, added []string
	for _, a := range then {
		if !slices.Contains(now, a) {
			gone = append(gone, a)
		}
	}
	for _, a := range now {
		if !slices.Contains(then, a) {
			added = append(added, a)
		}
	}
	if len(gone) == 0 && len(added) == 0 {
		return "the same options in another order"
	}
	var parts []string
	if len(gone) > 0 {
		parts = append(parts, "then "+strings.Join(gone, " "))
	}
	if len(added) > 0 {
		parts = append(parts, "now "+strings.Join(added, " "))
	}
	return strings.Join(parts, "; ")
}

// restorer is the cluster's runtime while guests are restored: it starts
// every guest that has a snapshot at once, before the supervisor asks for
// them (the supervisor brings guests up one after another, which would add
// up every guest's load time), and hands the supervisor the restored guest
// when it gets to it. A guest whose restore fails (QEMU cannot load the
// state: corrupt) boots cold instead. Only the first start of a guest is a
// restore: when it dies later, the supervisor's restart boots it cold from
// its disk as it is then.
type restorer struct {
	runtime.Runtime
	log     *slog.Logger
	mu      sync.Mutex
	pending map[int]*prestart
}

type prestart struct {
	done chan struct{}
	g    runtime.Guest
	err  error
	took time.Duration
	// report is filled in when the supervisor collects the guest.
	report *StartReport
}

func newRestorer(rt runtime.Runtime, log *slog.Logger) *restorer {
	return &restorer{Runtime: rt, log: log, pending: map[int]*prestart{}}
}

// prestart starts restoring g (which carries -loadvm) in the background.
func (r *restorer) prestart(ctx context.Context, g plan.Guest, report *StartReport) {
	ps := &prestart{done: make(chan struct{}), report: report}
	r.mu.Lock()
	r.pending[g.Index] = ps
	r.mu.Unlock()
	go func() {
		defer close(ps.done)
		start := time.Now()
		ps.g, ps.err = r.Runtime.Start(ctx, g)
		ps.took = time.Since(start)
	}()
}

func (r *restorer) take(i int) *prestart {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.pending[i]
	delete(r.pending, i)
	return ps
}

// Find does not look for a guest being restored: it is not there yet, or
// it is the one this restorer started.
func (r *restorer) Find(ctx context.Context, g plan.Guest) (runtime.Guest, bool, error) {
	r.mu.Lock()
	_, restoring := r.pending[g.Index]
	r.mu.Unlock()
	if restoring {
		return nil, false, nil
	}
	return r.Runtime.Find(ctx, g)
}

// Start hands over the restored guest, or boots g cold.
func (r *restorer) Start(ctx context.Context, g plan.Guest) (runtime.Guest, error) {
	if ps := r.take(g.Index); ps != nil {
		<-ps.done
		if ps.err == nil {
			ps.report.Restored, ps.report.Took = true, ps.took
			return ps.g, nil
		}
		ps.report.Why = fmt.Sprintf("restoring snapshot %q failed: %v", ps.report.From, ps.err)
		r.log.Warn("restoring the guest failed; booting it cold", "guest", g.Name, "snapshot", ps.report.From, "err", ps.err)
	}
	return r.Runtime.Start(ctx, g)
}

// abandon stops every guest that was restored but never handed over (the
// supervisor gave up on an earlier guest), so none is left running unseen.
func (r *restorer) abandon() {
	r.mu.Lock()
	left := r.pending
	r.pending = map[int]*prestart{}
	r.mu.Unlock()
	for _, ps := range left {
		<-ps.done
		if ps.err == nil {
			_ = r.Runtime.Stop(context.Background(), ps.g, 0)
		}
	}
}
