// Package bench runs `loco bench`: it finds the bench plugin that serves a
// scenario, boots the cluster of a spec for each guest count (with the
// loco binary, as a user would), has the plugin run the scenario against
// the cluster's API, gates the rows on thresholds and writes the reports
// (Markdown, CSV, JSON, an offline HTML page with plots).
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/core/bench/threshold"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/pluginhost"
	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/sdk"
)

// Options is one `loco bench` invocation.
type Options struct {
	Spec     string
	Vars     map[string]string // --var, passed on to loco run
	Scenario string
	// Guests are the guest counts to run at; empty means the spec's own.
	Guests []int
	Runs   int
	// Thresholds from flags, checked with the spec's.
	Thresholds []threshold.Rule
	Params     map[string]string
	// Warm: after each cold run of a scenario that boots a fresh cluster
	// per run, save a snapshot, stop, start again from it (loco run
	// --from) and run the scenario once more; rows say start=cold|warm.
	Warm   bool
	OutDir string
	// StateDir is LOCO_STATE_DIR for the clusters bench boots; "" keeps
	// the spec's or the default.
	StateDir string
	// Loco is the loco binary that boots clusters.
	Loco       string
	PluginDirs []string // nil: pluginhost.SearchDirs()
	Progress   io.Writer
	TTY        bool
	Log        *slog.Logger
}

// Row is a report row: a plugin's row with the run it came from.
type Row struct {
	Guests int `json:"guests"`
	Run    int `json:"run"`
	sdk.BenchRow
}

// Failure is a threshold a row broke (or that no row could be checked on).
type Failure struct {
	Rule    string  `json:"rule"`
	Row     *Row    `json:"row,omitempty"`
	Value   float64 `json:"value"`
	Missing bool    `json:"missing,omitempty"`
}

func (f Failure) String() string {
	if f.Missing {
		return fmt.Sprintf("%s: no row has %s", f.Rule, strings.Fields(f.Rule)[0])
	}
	return fmt.Sprintf("%s: %s is %s", f.Rule, f.Row.Name(), formatValue(f.Value))
}

// Name says which row it is: "guests=3 run=2 guest=demo-1".
func (r Row) Name() string {
	parts := []string{fmt.Sprintf("guests=%d", r.Guests), fmt.Sprintf("run=%d", r.Run)}
	for _, k := range sortedKeys(r.Labels) {
		parts = append(parts, k+"="+r.Labels[k])
	}
	return strings.Join(parts, " ")
}

// Result is everything a report shows.
type Result struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description"`
	Plugin      string    `json:"plugin"`
	Spec        string    `json:"spec"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	Host        string    `json:"host"`
	CPUs        int       `json:"cpus"`
	Guests      []int     `json:"guests"`
	Runs        int       `json:"runs"`
	Rows        []Row     `json:"rows"`
	Thresholds  []string  `json:"thresholds"`
	Failures    []Failure `json:"failures"`
	Passed      bool      `json:"passed"`
}

// ErrThresholds is returned (wrapped) when a threshold failed; the result
// and its reports are complete.
var ErrThresholds = errors.New("thresholds failed")

// Run runs the benchmark and writes the reports to opts.OutDir.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Runs < 1 {
		return nil, fmt.Errorf("--runs %d: run at least once", o.Runs)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.StateDir != "" {
		// QEMU wants its sockets' paths absolute, and make bench passes
		// build/bench/state.
		abs, err := filepath.Abs(o.StateDir)
		if err != nil {
			return nil, fmt.Errorf("--state-dir %s: %w", o.StateDir, err)
		}
		o.StateDir = abs
	}
	// The spec first: a bad threshold or variable fails before anything runs.
	c, err := loadSpec(o, 0)
	if err != nil {
		return nil, err
	}
	rules := append(append([]threshold.Rule{}, c.Bench.Thresholds...), o.Thresholds...)
	sweep := len(o.Guests) > 0 // else the spec's count, and no variable needed
	if !sweep {
		o.Guests = []int{c.Instances}
	} else if _, err := loadSpec(o, o.Guests[0]); err != nil {
		return nil, err
	}

	host := pluginhost.New(o.Log)
	defer host.Close()
	bp, sc, err := findScenario(ctx, host, o.PluginDirs, o.Scenario)
	if err != nil {
		return nil, err
	}
	if o.Warm && !sc.FreshCluster {
		return nil, fmt.Errorf("--warm: scenario %s runs on one cluster for every run; --warm applies to scenarios that boot a fresh cluster per run (boot)", sc.Name)
	}
	for _, need := range sc.Needs {
		if _, ok := c.Plugin(need); !ok {
			return nil, fmt.Errorf("scenario %s needs a %s plugin, and %s has no %s block", sc.Name, need, o.Spec, need)
		}
	}
	hostname, _ := os.Hostname()
	res := &Result{Scenario: sc.Name, Description: sc.Description, Plugin: bp.Candidate.ID(), Spec: o.Spec, Started: time.Now(),
		Host: hostname, CPUs: numCPU(), Guests: o.Guests, Runs: o.Runs}
	for _, r := range rules {
		res.Thresholds = append(res.Thresholds, r.Source)
	}
	bar := newProgress(o.Progress, o.TTY, len(o.Guests)*o.Runs)
	defer bar.finish()
	step := 0
	for _, n := range o.Guests {
		var cl *booted
		for run := 1; run <= o.Runs; run++ {
			if cl == nil || sc.FreshCluster {
				if cl != nil {
					cl.stop(o.Log)
				}
				bar.set(step, 0, fmt.Sprintf("guests=%d run %d/%d: booting", n, run, o.Runs))
				cl, err = boot(ctx, o, n, sweep, "")
				if err != nil {
					return nil, err
				}
			}
			starts := []string{""}
			if o.Warm {
				starts = []string{"cold", "warm"}
			}
			for _, start := range starts {
				what := ""
				if start == "warm" {
					bar.set(step, 0, fmt.Sprintf("guests=%d run %d/%d: saving a snapshot, starting from it", n, run, o.Runs))
					if cl, err = rebootWarm(ctx, o, cl, n, sweep); err != nil {
						return nil, err
					}
				}
				if start != "" {
					what = start + ": "
				}
				rows, err := bp.Client().BenchRun(ctx, sdk.RunRequest{Scenario: sc.Name, APIURL: cl.url, APIToken: cl.token, Guests: n, Run: run,
					Started: cl.started, Params: o.Params}, func(f float64, msg string) {
					bar.set(step, f, fmt.Sprintf("guests=%d run %d/%d: %s%s", n, run, o.Runs, what, msg))
				})
				if err != nil {
					cl.stop(o.Log)
					return nil, fmt.Errorf("scenario %s with %d guests, run %d%s: %w", sc.Name, n, run, strings.TrimSuffix(" "+what, ": "), err)
				}
				for _, r := range rows {
					if start != "" {
						r.Labels = withLabel(r.Labels, "start", start)
					}
					res.Rows = append(res.Rows, Row{Guests: n, Run: run, BenchRow: r})
				}
			}
			step++
			bar.set(step, 0, fmt.Sprintf("guests=%d run %d/%d: done", n, run, o.Runs))
		}
		cl.stop(o.Log)
	}
	bar.finish()
	res.Seconds = time.Since(res.Started).Seconds()
	res.Failures = Gate(res.Rows, rules)
	res.Passed = len(res.Failures) == 0
	if err := WriteReports(o.OutDir, res); err != nil {
		return res, err
	}
	if !res.Passed {
		return res, fmt.Errorf("%d of %d thresholds failed: %w", countRules(res.Failures), len(rules), ErrThresholds)
	}
	return res, nil
}

func countRules(fs []Failure) int {
	seen := map[string]bool{}
	for _, f := range fs {
		seen[f.Rule] = true
	}
	return len(seen)
}

// Gate checks every rule on every row that has its metric; a rule no row
// has fails too, so a renamed metric cannot pass a gate silently.
func Gate(rows []Row, rules []threshold.Rule) []Failure {
	var out []Failure
	for _, r := range rules {
		checked := false
		for i := range rows {
			v, ok := rows[i].Values[r.Metric]
			if !ok {
				continue
			}
			checked = true
			if !r.Holds(v) {
				out = append(out, Failure{Rule: r.Source, Row: &rows[i], Value: v})
			}
		}
		if !checked {
			out = append(out, Failure{Rule: r.Source, Missing: true})
		}
	}
	return out
}

func loadSpec(o Options, guests int) (*spec.Cluster, error) {
	l := spec.NewLoader()
	l.Vars = map[string]string{}
	for k, v := range o.Vars {
		l.Vars[k] = v
	}
	if guests > 0 {
		l.Vars["guests"] = strconv.Itoa(guests)
	}
	c, diags := l.Load(o.Spec)
	if diags.HasErrors() {
		var b bytes.Buffer
		spec.WriteDiagnostics(&b, l.Files(), diags)
		msg := strings.TrimSpace(b.String())
		if guests > 0 && strings.Contains(msg, `declares no variable "guests"`) {
			msg += "\n--guests sets the spec's variable \"guests\": declare `variable \"guests\" { type = number }` and write `instances = var.guests`"
		}
		return nil, fmt.Errorf("loading %s:\n%s", o.Spec, msg)
	}
	return c, nil
}

// findScenario starts every installed bench plugin until one serves name.
func findScenario(ctx context.Context, host *pluginhost.Host, dirs []string, name string) (*pluginhost.Plugin, sdk.Scenario, error) {
	if dirs == nil {
		dirs = pluginhost.SearchDirs()
	}
	var all []string
	for _, cand := range pluginhost.Discover(dirs) {
		if cand.Kind != sdk.KindBench || cand.Skipped != "" {
			continue
		}
		p, err := host.Start(ctx, cand, "")
		if err != nil {
			return nil, sdk.Scenario{}, fmt.Errorf("starting bench plugin %s: %w", cand.Path, err)
		}
		if _, err := p.Configure(ctx, cty.EmptyObjectVal, sdk.Cluster{}); err != nil {
			return nil, sdk.Scenario{}, fmt.Errorf("configuring bench plugin %s: %w", cand.Path, err)
		}
		scs, err := p.Client().BenchScenarios(ctx)
		if err != nil {
			return nil, sdk.Scenario{}, fmt.Errorf("bench plugin %s: %w", cand.Path, err)
		}
		for _, s := range scs {
			if s.Name == name {
				return p, s, nil
			}
			all = append(all, s.Name)
		}
		p.Stop()
	}
	if len(all) == 0 {
		return nil, sdk.Scenario{}, fmt.Errorf("no bench plugin is installed (looked in %s for loco-plugin-bench-*)", strings.Join(dirs, ", "))
	}
	sort.Strings(all)
	return nil, sdk.Scenario{}, fmt.Errorf("no bench plugin serves scenario %q; installed scenarios: %s", name, strings.Join(all, ", "))
}

// booted is a cluster bench started, and stops.
type booted struct {
	dir        string
	env        []string
	url, token string
	started    time.Time
}

// warmSnapshot is the snapshot --warm saves and starts from.
const warmSnapshot = "loco-bench-warm"

func withLabel(l map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range l {
		out[a] = b
	}
	return out
}

// rebootWarm saves a snapshot of the running cluster cl, stops it (keeping
// its overlays, where the snapshot is) and starts it again from the
// snapshot.
func rebootWarm(ctx context.Context, o Options, cl *booted, n int, sweep bool) (*booted, error) {
	args := []string{"snapshot", "save", "--name", warmSnapshot}
	for k, v := range o.Vars {
		args = append(args, "--var", k+"="+v)
	}
	if sweep {
		args = append(args, "--var", "guests="+strconv.Itoa(n))
	}
	args = append(args, o.Spec)
	cmd := exec.CommandContext(ctx, o.Loco, args...)
	cmd.Env = cl.env
	if out, err := cmd.CombinedOutput(); err != nil {
		cl.stop(o.Log)
		return nil, fmt.Errorf("--warm: saving a snapshot of %d guests (loco %s): %w\n%s", n, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := cluster.Stop(sctx, o.Log, cl.dir, 0, false)
	cancel()
	if err != nil {
		cl.stop(o.Log)
		return nil, fmt.Errorf("--warm: stopping the cluster after its snapshot: %w", err)
	}
	return boot(ctx, o, n, sweep, warmSnapshot)
}

// boot starts the spec's cluster with n guests, from snapshot from if set.
func boot(ctx context.Context, o Options, n int, sweep bool, from string) (*booted, error) {
	setVar := 0
	if sweep {
		setVar = n
	}
	c, err := loadSpec(o, setVar)
	if err != nil {
		return nil, err
	}
	env := os.Environ()
	dir := c.StateDir
	if dir == "" && o.StateDir != "" {
		dir = filepath.Join(o.StateDir, c.Name)
		env = append(env, "LOCO_STATE_DIR="+o.StateDir)
	}
	if dir == "" {
		dir = plan.DefaultStateDir(c)
	}
	// bench stops and destroys what it booted: never a cluster it found.
	if pid := cluster.LockHolder(dir); pid != 0 {
		return nil, fmt.Errorf("cluster %s already runs (loco PID %d, %s): loco bench boots and destroys its own; stop it, or give --state-dir", c.Name, pid, dir)
	}
	args := []string{"run", "--detach"}
	if from != "" {
		args = append(args, "--from", from)
	}
	for k, v := range o.Vars {
		args = append(args, "--var", k+"="+v)
	}
	if sweep {
		args = append(args, "--var", "guests="+strconv.Itoa(n))
	}
	args = append(args, o.Spec)
	cmd := exec.CommandContext(ctx, o.Loco, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	b := &booted{dir: dir, env: env, started: time.Now()}
	if err := cmd.Run(); err != nil {
		b.stop(o.Log)
		return nil, fmt.Errorf("booting %d guests of %s (loco %s): %w\n%s", n, o.Spec, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	b.url, b.token, err = cluster.APIEndpoint(dir)
	if err != nil {
		b.stop(o.Log)
		return nil, fmt.Errorf("the cluster of %s booted, but its API: %w", o.Spec, err)
	}
	return b, nil
}

func (b *booted) stop(log *slog.Logger) {
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Stop(ctx, log, b.dir, 0, true); err != nil {
		log.Warn("stopping the benchmark's cluster", "dir", b.dir, "err", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
