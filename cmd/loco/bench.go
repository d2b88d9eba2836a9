package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/locolan/loco/core/bench"
	"github.com/locolan/loco/core/bench/threshold"
)

func newBenchCmd(g *globals) *cobra.Command {
	var sf specFlags
	var scenario, guests, out, stateDir string
	var runs int
	var warm bool
	var rules, params []string
	cmd := &cobra.Command{
		Use:   "bench FILE --scenario NAME",
		Short: "Benchmark a cluster with a scenario of a bench plugin",
		Long: `bench boots the spec's cluster at each guest count (--guests sets the spec's
variable "guests"), has the bench plugin that serves --scenario run it
--runs times through the cluster's API, and writes report.md, results.csv,
results.json and report.html (plots, offline) into --out. Each cluster is
stopped and destroyed afterwards; a cluster of the same name that already
runs is refused (give --state-dir).

Thresholds (the spec's bench { thresholds = [...] } and --threshold) are
METRIC OP NUMBER, e.g. "boot_s < 60"; bench exits 1 naming every row that
breaks one, and when no row has the metric.`,
		Example: "  loco bench configs/demo.hcl --scenario boot --guests 1,3 --runs 3\n" +
			"  loco bench configs/demo.hcl --scenario input-latency --threshold 'latency_p50_ms <= 150'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := bench.Options{Spec: args[0], Scenario: scenario, Runs: runs, OutDir: out, StateDir: stateDir,
				Vars: map[string]string{}, Params: map[string]string{}, Progress: cmd.ErrOrStderr(), Log: g.log, Warm: warm}
			if scenario == "" {
				return errors.New("--scenario is required (loco plugins lists the bench plugins)")
			}
			for _, kv := range sf.vars {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--var %q: write name=value", kv)
				}
				o.Vars[k] = v
			}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q: write name=value", kv)
				}
				o.Params[k] = v
			}
			if guests != "" {
				for _, s := range strings.Split(guests, ",") {
					n, err := strconv.Atoi(strings.TrimSpace(s))
					if err != nil || n < 1 {
						return fmt.Errorf("--guests %q: write guest counts like 1,3,9", guests)
					}
					o.Guests = append(o.Guests, n)
				}
				if _, set := o.Vars["guests"]; set {
					return errors.New("--guests and --var guests=... both set the guest count: give one")
				}
			}
			for _, s := range rules {
				r, err := threshold.Parse(s)
				if err != nil {
					return fmt.Errorf("--threshold: %w", err)
				}
				o.Thresholds = append(o.Thresholds, r)
			}
			if o.OutDir == "" {
				o.OutDir = filepath.Join("bench-out", scenario+"-"+time.Now().Format("20060102-150405"))
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the loco binary to boot clusters with: %w", err)
			}
			o.Loco = self
			if f, ok := cmd.ErrOrStderr().(*os.File); ok {
				o.TTY = term.IsTerminal(int(f.Fd()))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := bench.Run(ctx, o)
			if res != nil {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s: %d rows in %s (%s, %s, %s, %s)\n", res.Scenario, len(res.Rows), o.OutDir,
					bench.FileMarkdown, bench.FileCSV, bench.FileJSON, bench.FileHTML)
				for _, f := range res.Failures {
					fmt.Fprintf(w, "FAIL %s\n", f)
				}
				if res.Passed && len(res.Thresholds) > 0 {
					fmt.Fprintf(w, "PASS %s\n", strings.Join(res.Thresholds, "; "))
				}
			}
			if errors.Is(err, bench.ErrThresholds) {
				return exitError{1}
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&scenario, "scenario", "", "the scenario to run (required)")
	cmd.Flags().StringVar(&guests, "guests", "", "guest counts to run at, e.g. 1,3,9 (default: the spec's)")
	cmd.Flags().IntVar(&runs, "runs", 1, "runs per guest count")
	cmd.Flags().BoolVar(&warm, "warm", false, "after each cold run, save a snapshot and run again from it (loco run --from); rows say start=cold|warm (scenario boot)")
	cmd.Flags().StringArrayVar(&rules, "threshold", nil, "fail (exit 1) unless every row holds METRIC OP NUMBER, e.g. 'boot_s < 60' (repeatable)")
	cmd.Flags().StringArrayVar(&params, "param", nil, "a scenario parameter name=value (repeatable; see docs/benchmarks.md)")
	cmd.Flags().StringVar(&out, "out", "", "report directory (default bench-out/SCENARIO-TIME)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "LOCO_STATE_DIR for the clusters bench boots")
	return cmd
}
