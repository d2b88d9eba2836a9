package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/runtime/containerd"
	"github.com/locolan/loco/core/runtime/process"
	"github.com/locolan/loco/core/spec"
)

// StateDirFor finds a cluster's state directory from a spec file or a
// cluster name; with "", the only cluster under the default state root.
func StateDirFor(arg string, load func(string) (*spec.Cluster, error)) (string, error) {
	if arg != "" {
		if st, err := os.Stat(arg); err == nil && !st.IsDir() {
			c, err := load(arg)
			if err != nil {
				return "", err
			}
			return plan.DefaultStateDir(c), nil
		}
		return plan.DefaultStateDir(&spec.Cluster{Name: arg}), nil
	}
	root := filepath.Dir(plan.DefaultStateDir(&spec.Cluster{Name: "x"}))
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "state.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no cluster has run under %s: name a spec file or cluster", root)
	case 1:
		return filepath.Join(root, names[0]), nil
	default:
		return "", fmt.Errorf("several clusters under %s (%v): name one", root, names)
	}
}

// GuestState is a guest as seen from its state directory.
type GuestState struct {
	plan.Guest
	PID     int
	Started time.Time
	Running bool
	// Container and Image (name@digest) are set for containerd guests.
	Container string
	Image     string
}

// Inspect reads a cluster's state directory without touching its guests.
func Inspect(dir string) (*State, []GuestState, error) {
	st, err := ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("no cluster state in %s: has it ever run?", dir)
		}
		return nil, nil, err
	}
	var gs []GuestState
	if cs := st.Containerd; cs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d := containerd.New(slog.New(slog.DiscardHandler), containerd.Config{Address: cs.Address, Namespace: cs.Namespace, Snapshotter: cs.Snapshotter, Cluster: st.Cluster})
		defer d.Close()
		for _, g := range st.Plan.Guests {
			s, err := d.Status(ctx, g)
			if err != nil {
				return st, nil, fmt.Errorf("asking containerd about guest %s: %w", g.Name, err)
			}
			gs = append(gs, GuestState{Guest: g, PID: s.PID, Started: s.Started, Running: s.Running, Container: s.Container, Image: s.Image})
		}
		return st, gs, nil
	}
	for _, g := range st.Plan.Guests {
		pid, started, running := process.Status(g)
		gs = append(gs, GuestState{Guest: g, PID: pid, Started: started, Running: running})
	}
	return st, gs, nil
}

// Stop stops the cluster in dir. A loco that runs it is asked (SIGTERM) to
// stop its guests and exit, with the spec's grace; otherwise the guests are
// stopped here with grace (negative: the spec's stop_grace). With destroy,
// the guests' disk overlays are deleted afterwards, and with them the
// snapshots they hold (and the snapshots' records); nothing else is.
func Stop(ctx context.Context, log *slog.Logger, dir string, grace time.Duration, destroy bool) error {
	st, err := ReadState(dir)
	if err != nil {
		return fmt.Errorf("reading the cluster state in %s: %w", dir, err)
	}
	if grace < 0 {
		grace = st.StopGrace
	}
	if pid := LockHolder(dir); pid > 0 {
		log.Info("asking the running loco to stop the cluster", "pid", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("signalling loco (pid %d): %w", pid, err)
		}
		deadline := time.Now().Add(grace + time.Duration(len(st.Plan.Guests))*10*time.Second + 30*time.Second)
		for LockHolder(dir) != 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("loco (pid %d) did not stop the cluster in time", pid)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	rt := newRuntime(log, st.Cluster, st.Containerd)
	var wg sync.WaitGroup
	errs := make([]error, len(st.Plan.Guests))
	for i, g := range st.Plan.Guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rg, found, err := rt.Find(ctx, g)
			if err != nil {
				errs[i] = err
				return
			}
			if found {
				if err := rt.Stop(ctx, rg, grace); err != nil {
					errs[i] = err
					return
				}
				log.Info("guest stopped", "guest", g.Name)
			}
			if destroy {
				errs[i] = rt.Destroy(ctx, g)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || !destroy {
		return err
	}
	// The states lived in the overlays, so the records now point at nothing.
	if err := os.RemoveAll(snapshotsDir(dir)); err != nil {
		return fmt.Errorf("removing the snapshot records: %w", err)
	}
	return nil
}

// APIEndpoint is where the running loco of the cluster in dir serves its
// API, and its token, for commands that talk to it (`loco lan`, `loco mcp`).
func APIEndpoint(dir string) (baseURL, token string, err error) {
	if LockHolder(dir) == 0 {
		return "", "", fmt.Errorf("no loco runs the cluster in %s: start it with `loco run`", dir)
	}
	st, err := ReadState(dir)
	if err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		return "", "", fmt.Errorf("reading the API token: %w", err)
	}
	return "http://" + st.APIListen, strings.TrimSpace(string(b)), nil
}
