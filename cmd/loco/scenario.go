package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/internal/scenario"
	"github.com/locolan/loco/sdk"
)

func newScenarioCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scenario",
		Short: "Run scripted sessions on a cluster: keys in, screens and consoles awaited",
	}
	cmd.AddCommand(newScenarioRunCmd(g))
	return cmd
}

func newScenarioRunCmd(g *globals) *cobra.Command {
	var sf specFlags
	var artifacts string
	var keep, asJSON bool
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario file (docs/scenario.md) against its cluster",
		Long: `run reads the scenario, starts its cluster (loco run --detach) unless a loco
already runs it, and does the steps in order: each step's guests get its keys
and text through the API, then the step waits until each guest's screen
matches the step's pixel rules and its console printed the step's line. It
prints per step and guest how long that took, saves every guest's screenshot
of every step under --artifacts, and ends with the LAN's counters. A guest
that does not reach a step in time fails the run, naming the step and the
guest's last screenshot. A cluster that run started is stopped at the end
unless --keep.`,
		Example: "  loco scenario run images/testguest/lan-game.scenario.hcl\n  loco scenario run --var win98_disk=win98.qcow2 configs/lego-loco.scenario.hcl",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, files, diags := scenario.Load(args[0])
			if len(diags) > 0 {
				printScenarioDiags(cmd.ErrOrStderr(), files, diags)
			}
			if diags.HasErrors() {
				return exitError{1}
			}
			return runScenario(cmd, g, &sf, s, artifacts, keep, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&artifacts, "artifacts", filepath.Join("build", "artifacts"), "directory for the screenshots and report.json (a subdirectory per scenario)")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave a cluster that this run started running")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// apiCluster is a running cluster seen through its API, and its guests'
// serial logs in the state directory.
type apiCluster struct {
	c   *client.Client
	dir string
}

func (a *apiCluster) PressKeys(ctx context.Context, guest int, keys []string) error {
	for _, k := range keys {
		if _, err := a.c.Input(ctx, strconv.Itoa(guest), client.Event{Key: k}); err != nil {
			return err
		}
	}
	return nil
}

func (a *apiCluster) Type(ctx context.Context, guest int, text string) error {
	_, err := a.c.Type(ctx, strconv.Itoa(guest), text)
	return err
}

func (a *apiCluster) Screenshot(ctx context.Context, guest int) ([]byte, error) {
	s, err := a.c.Screenshot(ctx, strconv.Itoa(guest))
	return s.PNG, err
}

func (a *apiCluster) Console(guest int) (string, error) {
	b, err := os.ReadFile(filepath.Join(a.dir, "guests", strconv.Itoa(guest), "serial.log"))
	if os.IsNotExist(err) {
		return "", nil // not booted yet
	}
	return string(b), err
}

func runScenario(cmd *cobra.Command, g *globals, sf *specFlags, s *scenario.Scenario, artifacts string, keep, asJSON bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	cs, _, err := sf.load(cmd.ErrOrStderr(), s.Spec)
	if err != nil {
		return err
	}
	dir, err := stateDirArg(cmd, sf, []string{s.Spec})
	if err != nil {
		return err
	}
	for _, st := range s.Steps {
		for _, gi := range st.Guests {
			if gi >= cs.Instances {
				return fmt.Errorf("scenario %s, step %q: guest %d, but %s has %d guests", s.Name, st.Name, gi, s.Spec, cs.Instances)
			}
		}
	}
	if cluster.LockHolder(dir) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding loco to start the cluster: %w", err)
		}
		runArgs := append([]string{"run", "--detach"}, varArgs(sf.vars)...)
		fmt.Fprintf(out, "starting %s\n", s.Spec)
		run := exec.CommandContext(ctx, self, append(runArgs, s.Spec)...)
		run.Stdout, run.Stderr = io.Discard, cmd.ErrOrStderr()
		if err := run.Run(); err != nil {
			return fmt.Errorf("starting the cluster of %s: %w", s.Spec, err)
		}
		if !keep {
			defer func() {
				stop := exec.Command(self, append(append([]string{"stop"}, varArgs(sf.vars)...), s.Spec)...)
				stop.Stdout, stop.Stderr = io.Discard, cmd.ErrOrStderr()
				if err := stop.Run(); err != nil {
					g.log.Warn("stopping the scenario's cluster", "spec", s.Spec, "err", err)
				}
			}()
		}
	}
	base, token, err := cluster.APIEndpoint(dir)
	if err != nil {
		return err
	}
	c := client.New(base, token, nil)
	shots := filepath.Join(artifacts, s.Name)
	rep, runErr := scenario.Run(ctx, s, &apiCluster{c: c, dir: dir}, shots)
	if rep == nil {
		return runErr
	}
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	lan, lanErr := c.LANStatus(lctx)
	cancel()
	full := struct {
		*scenario.Report
		LAN *sdk.LANStatus `json:"lan,omitempty"`
	}{Report: rep}
	if lanErr == nil {
		full.LAN = &lan
	}
	if b, err := json.MarshalIndent(full, "", "  "); err == nil {
		os.WriteFile(filepath.Join(shots, "report.json"), b, 0o644)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(full)
	} else {
		printScenarioReport(out, rep, full.LAN, lanErr, shots)
	}
	return runErr
}

func varArgs(vars []string) []string {
	var out []string
	for _, v := range vars {
		out = append(out, "--var", v)
	}
	return out
}

func printScenarioReport(w io.Writer, rep *scenario.Report, lan *sdk.LANStatus, lanErr error, shots string) {
	fmt.Fprintf(w, "scenario %s: %d steps in %.1f s\n", rep.Scenario, len(rep.Steps), rep.Took.Seconds())
	for _, st := range rep.Steps {
		fmt.Fprintf(w, "  step %-12s %6.1f s\n", st.Name, st.Took.Seconds())
		for _, gr := range st.Guests {
			status := fmt.Sprintf("%.1f s", gr.Took.Seconds())
			if gr.Error != "" {
				status = "FAILED: " + gr.Error
			}
			fmt.Fprintf(w, "    guest %d  %s\n", gr.Guest, status)
		}
	}
	if lanErr != nil {
		fmt.Fprintf(w, "LAN counters: %v\n", lanErr)
	} else if lan != nil {
		fmt.Fprintln(w, "LAN counters (frames rx/tx, by EtherType):")
		for _, p := range lan.Ports {
			types := make([]string, 0, len(p.FramesByEtherType))
			for k, v := range p.FramesByEtherType {
				types = append(types, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(types)
			fmt.Fprintf(w, "  %-14s rx=%d tx=%d drops=%d %v\n", p.Name, p.RxFrames, p.TxFrames, p.Drops, types)
		}
	}
	fmt.Fprintf(w, "screenshots and report.json: %s\n", shots)
}

func printScenarioDiags(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	spec.WriteDiagnostics(w, files, diags)
}
