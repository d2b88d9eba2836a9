// Package cluster runs one cluster from its spec: it owns the cluster's state
// directory (a lock and a state file), chooses the accelerator, starts the
// plugins, plans, and hands the guests to the supervisor. The state file lets
// `loco status`, `loco stop` and `loco logs` work without a running loco.
// It also saves, lists and deletes snapshots of a cluster's guests and
// starts guests from them (snapshot.go, restore.go).
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/pluginhost"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// Options tune how a cluster runs.
type Options struct {
	Log *slog.Logger
	// PluginDirs are searched for plugins; nil means the default search path.
	PluginDirs []string
	// Policy is the supervisor's restart policy; zero means DefaultPolicy.
	Policy supervise.Policy
	// AccelCache remembers the accelerator probe; "" means ~/.cache/loco/accel.json.
	AccelCache string
	// From names a snapshot every guest starts from (loco run --from); ""
	// means each guest's start_from, if any.
	From string
}

// State is what a running cluster leaves in its state directory.
type State struct {
	Cluster   string     `json:"cluster"`
	SpecFile  string     `json:"spec_file"`
	LocoPID   int        `json:"loco_pid"`
	APIListen string     `json:"api_listen"` // the address the API is bound to, once it is
	Plan      *plan.Plan `json:"plan"`
	// StopGrace is the spec's runtime stop_grace, for stops without a loco.
	StopGrace time.Duration `json:"stop_grace"`
	// Containerd is set when the guests are containerd tasks.
	Containerd *ContainerdState `json:"containerd,omitempty"`
	Updated    time.Time        `json:"updated"`
}

// Cluster is a cluster this process owns.
type Cluster struct {
	Spec     *spec.Cluster
	StateDir string
	Token    string
	log      *slog.Logger
	opts     Options
	lock     *os.File
	host     *pluginhost.Host
	plugins  *pluginhost.Set
	plan     *plan.Plan
	rt       runtime.Runtime
	sup      *supervise.Supervisor
	apiAddr  string
	starts   []StartReport
}

// ErrBusy says another loco runs this cluster.
var ErrBusy = errors.New("cluster is already run by another loco")

// Open claims the cluster's state directory. It fails when another loco
// holds it, or when the directory belongs to another cluster.
func Open(c *spec.Cluster, opts Options) (*Cluster, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Policy == (supervise.Policy{}) {
		opts.Policy = supervise.DefaultPolicy
		opts.Policy.Limit = c.Runtime.RestartLimit
	}
	dir := plan.DefaultStateDir(c)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	if st, err := ReadState(dir); err == nil && st.Cluster != c.Name {
		return nil, fmt.Errorf("state directory %s belongs to cluster %q, not %q: give this cluster its own state_dir", dir, st.Cluster, c.Name)
	}
	if err := CheckRuntime(context.Background(), c); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "loco.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock of %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, busyError(dir, c.Name)
	}
	lock.Truncate(0)
	lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	cl := &Cluster{Spec: c, StateDir: dir, log: opts.Log, opts: opts, lock: lock, rt: newRuntime(opts.Log, c.Name, containerdState(c))}
	if cl.Token, err = token(c, dir); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// busyError says who holds the lock. The winner of a race writes its PID
// just after it takes the lock, so an empty lock file is waited on briefly
// rather than reported as "pid 0".
func busyError(dir, name string) error {
	pid := 0
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pid = LockHolder(dir); pid != 0 || time.Now().After(deadline) {
			break
		}
	}
	who := "another loco"
	if pid != 0 {
		who = fmt.Sprintf("pid %d", pid)
	}
	return fmt.Errorf("%w (%s, state directory %s): stop it with `loco stop %s`", ErrBusy, who, dir, name)
}

// LockHolder is the PID of the loco that runs the cluster in dir, or 0.
func LockHolder(dir string) int {
	f, err := os.Open(filepath.Join(dir, "loco.lock"))
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0 // nobody holds it
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid
}

// token is the API's bearer token: the spec's, else a new one for every
// run, so a token that leaked (it is printed, and sits in browser history as
// the dashboard's ?token=) dies with the run. Either way it is kept (0600)
// in the state directory, where other loco commands on this machine read
// it; a client that loses its token reads it again from there.
func token(c *spec.Cluster, dir string) (string, error) {
	path := filepath.Join(dir, "api-token")
	t := c.API.Token
	if t == "" {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("generating an API token: %w", err)
		}
		t = hex.EncodeToString(raw)
	}
	// Written anew, never through an existing file's mode.
	os.Remove(path)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("saving the API token: %w", err)
	}
	return t, nil
}

// Up chooses the accelerator, starts and configures the plugins, attaches
// every instance to them, plans, and starts (or reattaches) every guest.
// Spec problems found by plugins come back as diagnostics.
func (cl *Cluster) Up(ctx context.Context) (hcl.Diagnostics, error) {
	p, host, set, diags, err := prepare(ctx, cl.Spec, cl.StateDir, "", cl.opts)
	cl.host, cl.plugins = host, set
	if err != nil || diags.HasErrors() {
		return diags, err
	}
	cl.plan = p
	choices, err := planRestores(ctx, cl.Spec, p, cl.opts.From)
	if err != nil {
		return diags, err
	}
	if err := cl.writeState(); err != nil {
		return diags, err
	}
	rt := runtime.Runtime(cl.rt)
	var r *restorer
	if len(choices) > 0 {
		r = newRestorer(cl.rt, cl.log)
		cl.starts = make([]StartReport, len(choices))
		for i, ch := range choices {
			cl.starts[i] = ch.report
			if ch.guest.Name == "" {
				continue // booting cold, and the report says why
			}
			// A guest that already runs (loco was restarted, the guests
			// were not) is reattached as it is, never replaced.
			if _, found, err := cl.rt.Find(ctx, ch.guest); err == nil && found {
				cl.starts[i].Reattached = true
				continue
			}
			r.prestart(ctx, ch.guest, &cl.starts[i])
		}
		rt = r
	}
	cl.sup = supervise.New(rt, cl.log, cl.opts.Policy)
	if err := cl.sup.Start(ctx, p); err != nil {
		if r != nil {
			r.abandon()
		}
		return diags, err
	}
	for _, s := range cl.starts {
		switch {
		case s.Restored:
			cl.log.Info("guest restored", "guest", s.Guest, "snapshot", s.From, "took", s.Took)
		case s.Reattached:
			cl.log.Info("guest already running; not restored", "guest", s.Guest, "snapshot", s.From)
		default:
			cl.log.Info("guest booted cold instead of restoring", "guest", s.Guest, "snapshot", s.From, "why", s.Why)
		}
	}
	return diags, nil
}

// StartReports say, once Up has returned, how each guest that was to start
// from a snapshot came up: restored, or booted cold and why. Empty when no
// snapshot was asked for.
func (cl *Cluster) StartReports() []StartReport { return slices.Clone(cl.starts) }

// Preview makes the plan `loco run` would make, starting the plugins only
// to ask them for their QEMU arguments. Nothing is booted or locked, and
// nothing is written to the state directory: the plugins are shown a
// scratch directory (they bind sockets and make directories as they
// attach), and their arguments are rewritten to the real one.
func Preview(ctx context.Context, c *spec.Cluster, opts Options) (*plan.Plan, hcl.Diagnostics, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	scratch, err := os.MkdirTemp("", "loco-plan-")
	if err != nil {
		return nil, nil, fmt.Errorf("making a scratch directory for the plugins: %w", err)
	}
	defer os.RemoveAll(scratch)
	p, host, _, diags, err := prepare(ctx, c, plan.DefaultStateDir(c), scratch, opts)
	if host != nil {
		host.Close()
	}
	return p, diags, err
}

// prepare resolves everything a plan needs: the accelerator, the plugins and
// their fragments. The plugin host it returns is running (nil on early
// error). pluginDir, if not "", is the state directory the plugins are told
// (Preview's scratch); their arguments are rewritten to stateDir.
func prepare(ctx context.Context, c *spec.Cluster, stateDir, pluginDir string, opts Options) (*plan.Plan, *pluginhost.Host, *pluginhost.Set, hcl.Diagnostics, error) {
	diags := CheckHost(ctx, c)
	if diags.HasErrors() {
		return nil, nil, nil, diags, nil
	}
	if pluginDir == "" {
		pluginDir = stateDir
	}
	cache := opts.AccelCache
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "loco", "accel.json")
		}
	}
	accel, err := qemu.ProbeAccel(ctx, qemu.ProbeOptions{Requested: c.Guest.Accel, Kernel: c.Image.Kernel, CacheFile: cache})
	if err != nil && accel.Accel == "" {
		return nil, nil, nil, diags, fmt.Errorf("choosing the accelerator: %w", err)
	}
	opts.Log.Info("accelerator chosen", "accel", accel.Accel, "reason", accel.Reason)

	facts := plan.FactsIn(c, pluginDir)
	host := pluginhost.New(opts.Log)
	host.Dirs = opts.PluginDirs
	set, loadDiags := host.Load(ctx, c, facts)
	diags = append(diags, loadDiags...)
	if diags.HasErrors() {
		return nil, host, set, diags, nil
	}
	in := plan.Inputs{StateDir: stateDir, Accel: accel.Accel, AccelReason: accel.Reason,
		NetArgs: map[int][]string{}, StreamArgs: map[int][]string{}, XDisplays: map[int]string{}}
	for kind, dst := range map[string]map[int][]string{sdk.KindNetwork: in.NetArgs, sdk.KindStream: in.StreamArgs} {
		p := set.Get(kind)
		if p == nil {
			continue
		}
		for _, inst := range facts.Instances {
			args, err := p.Attach(ctx, inst)
			if err != nil {
				return nil, host, set, diags, fmt.Errorf("attaching guest %s to the %s plugin: %w", inst.Name, kind, err)
			}
			if pluginDir != stateDir {
				for j := range args {
					args[j] = strings.ReplaceAll(args[j], pluginDir, stateDir)
				}
			}
			dst[int(inst.Index)] = args
			if w := p.Window(inst.Index); kind == sdk.KindStream && w.XDisplay != "" {
				in.XDisplays[int(inst.Index)] = w.XDisplay
			}
		}
	}
	p, err := plan.Build(c, in)
	return p, host, set, diags, err
}

// SetAPIAddr records where the API actually listens (the spec may ask for
// port 0), so other loco commands can find it.
func (cl *Cluster) SetAPIAddr(addr string) error {
	cl.apiAddr = addr
	return cl.writeState()
}

func (cl *Cluster) writeState() error {
	listen := cl.apiAddr
	if listen == "" {
		listen = cl.Spec.API.Listen
	}
	st := State{Cluster: cl.Spec.Name, SpecFile: cl.Spec.File, LocoPID: os.Getpid(), APIListen: listen, Plan: cl.plan, StopGrace: cl.Spec.Runtime.StopGrace,
		Containerd: containerdState(cl.Spec), Updated: time.Now()}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(cl.StateDir, "state.json")
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

// ReadState reads the state a cluster left in dir.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, "state.json"), err)
	}
	return &st, nil
}

// Plan is the cluster's plan, once Up has made it.
func (cl *Cluster) Plan() *plan.Plan { return cl.plan }

// Guests is a snapshot of every guest.
func (cl *Cluster) Guests() []supervise.GuestStatus {
	if cl.sup == nil {
		return nil
	}
	return cl.sup.Status()
}

// Events are recent guest events.
func (cl *Cluster) Events() []supervise.Event {
	if cl.sup == nil {
		return nil
	}
	return cl.sup.Events()
}

// Down stops every guest (power button, grace, quit, kill) and the plugins.
func (cl *Cluster) Down(ctx context.Context) error {
	var err error
	if cl.sup != nil {
		err = cl.sup.Stop(ctx, cl.Spec.Runtime.StopGrace)
	}
	if cl.host != nil {
		cl.host.Close()
	}
	return err
}

// Detach stops supervising but leaves the guests running.
func (cl *Cluster) Detach() {
	if cl.sup != nil {
		cl.sup.Detach()
	}
	if cl.host != nil {
		cl.host.Close()
	}
}

// Close releases the state directory.
func (cl *Cluster) Close() {
	if cl.lock != nil {
		cl.lock.Close()
		cl.lock = nil
	}
}
