package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/spec"
)

// stateDirArg resolves the FILE|CLUSTER argument of status, stop and logs.
func stateDirArg(cmd *cobra.Command, sf *specFlags, args []string) (string, error) {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	return cluster.StateDirFor(arg, func(path string) (*spec.Cluster, error) {
		c, _, err := sf.load(cmd.ErrOrStderr(), path)
		return c, err
	})
}

func newStatusCmd(g *globals) *cobra.Command {
	var sf specFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [FILE|CLUSTER]",
		Short: "Show a cluster's guests: state, PID, accelerator, uptime",
		Long: `status reads the cluster's state directory; it works whether or not a loco
process runs the cluster. With no argument it shows the only cluster there is.`,
		Example: "  loco status\n  loco status demo\n  loco status configs/demo.hcl --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, ok, err := kubeArg(cmd, &sf, args); err != nil || ok {
				if err != nil {
					return err
				}
				return statusKube(cmd, c, asJSON)
			}
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			st, guests, err := cluster.Inspect(dir)
			if err != nil {
				return err
			}
			holder := cluster.LockHolder(dir)
			states := guestStates(guests, liveInstances(cmd.Context(), dir, holder))
			out := cmd.OutOrStdout()
			if asJSON {
				type row struct {
					Name string `json:"name"`
					// State is the supervisor's (running, restarting,
					// ...) when a loco runs the cluster, else running or
					// stopped.
					State   string  `json:"state"`
					Running bool    `json:"running"`
					PID     int     `json:"pid"`
					Accel   string  `json:"accel"`
					Uptime  float64 `json:"uptime_seconds"`
					MAC     string  `json:"mac"`
					// Container and Image (name@digest): containerd guests.
					Container string `json:"container,omitempty"`
					Image     string `json:"image,omitempty"`
				}
				res := struct {
					Cluster     string `json:"cluster"`
					LocoPID     int    `json:"loco_pid"`
					Accel       string `json:"accel"`
					AccelReason string `json:"accel_reason"`
					API         string `json:"api"`
					Runtime     string `json:"runtime"`
					Guests      []row  `json:"guests"`
				}{Cluster: st.Cluster, LocoPID: holder, Accel: st.Plan.Accel, AccelReason: st.Plan.AccelReason, API: st.APIListen, Runtime: st.Plan.Runtime}
				for i, gs := range guests {
					r := row{Name: gs.Name, State: states[i], Running: gs.Running, PID: gs.PID, Accel: st.Plan.Accel, MAC: gs.MAC, Container: gs.Container, Image: gs.Image}
					if gs.Running {
						r.Uptime = time.Since(gs.Started).Round(time.Second).Seconds()
					}
					res.Guests = append(res.Guests, r)
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			supervisor := "no loco runs it (guests are not supervised)"
			if holder > 0 {
				supervisor = fmt.Sprintf("supervised by loco pid %d", holder)
			}
			fmt.Fprintf(out, "cluster %s: %s\naccelerator %s: %s\napi http://%s (token in %s)\n", st.Cluster, supervisor,
				st.Plan.Accel, st.Plan.AccelReason, st.APIListen, filepath.Join(dir, "api-token"))
			if cs := st.Containerd; cs != nil {
				image := "(no container now)"
				for _, gs := range guests {
					if gs.Image != "" {
						image = gs.Image
						break
					}
				}
				fmt.Fprintf(out, "runtime containerd: namespace %s at %s\nimage %s\n", cs.Namespace, cs.Address, image)
			}
			fmt.Fprintln(out)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GUEST\tSTATE\tPID\tACCEL\tUPTIME\tMAC")
			for i, gs := range guests {
				state, up, pid := states[i], "-", "-"
				if gs.Running {
					up, pid = time.Since(gs.Started).Truncate(time.Second).String(), fmt.Sprint(gs.PID)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", gs.Name, state, pid, st.Plan.Accel, up, gs.MAC)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// liveInstances are the guests as the supervising loco's API shows them,
// or nil when no loco runs the cluster or its API does not answer quickly.
func liveInstances(ctx context.Context, dir string, holder int) []api.Instance {
	if holder == 0 {
		return nil
	}
	base, token, err := cluster.APIEndpoint(dir)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := client.New(base, token, nil)
	c.RetryFor = 0
	live, err := c.Instances(ctx)
	if err != nil {
		return nil
	}
	return live
}

// guestStates is each guest's state for status: the supervisor's when a
// loco runs the cluster (so status and the API agree: a guest in restart
// backoff is "restarting", not "stopped"), else what the state directory
// says.
func guestStates(guests []cluster.GuestState, live []api.Instance) []string {
	byName := map[string]string{}
	for _, in := range live {
		byName[in.Name] = in.State
	}
	out := make([]string, len(guests))
	for i, g := range guests {
		switch st, ok := byName[g.Name]; {
		case ok:
			out[i] = st
		case g.Running:
			out[i] = "running"
		default:
			out[i] = "stopped"
		}
	}
	return out
}

func newStopCmd(g *globals) *cobra.Command {
	var sf specFlags
	var destroy bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "stop [FILE|CLUSTER]",
		Short: "Power a cluster's guests down; keep their disks unless --destroy",
		Long: `stop asks the loco that runs the cluster to stop it, or stops the guests
itself when none does: ACPI power button, then quit after the grace period,
then kill. Disks are kept. --destroy also deletes each guest's disk overlay
(the base image is never touched). A running loco stops its guests with the
spec's runtime stop_grace; --grace applies when stop does it itself.`,
		Example: "  loco stop demo\n  loco stop configs/demo.hcl --destroy",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, ok, err := kubeArg(cmd, &sf, args); err != nil || ok {
				if err != nil {
					return err
				}
				return stopKube(cmd, c, destroy)
			}
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("grace") {
				grace = -1 // the spec's runtime stop_grace, kept in the state
			}
			if err := cluster.Stop(cmd.Context(), g.log, dir, grace, destroy); err != nil {
				return err
			}
			what := "stopped; disks kept"
			if destroy {
				what = "stopped; disk overlays deleted"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster in %s %s\n", dir, what)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&destroy, "destroy", false, "also delete the guests' disk overlays")
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long guests get to power down before they are quit (default: the spec's runtime stop_grace)")
	return cmd
}
