package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/cluster"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save, list and delete snapshots of a running cluster (warm start with run --from)",
		Long: `A snapshot is every guest's state at one instant: memory, devices and disk,
kept inside each guest's own disk overlay. 'loco run --from NAME' starts the
guests from it in a fraction of a second instead of booting them. A guest is
only ever restored from its own state, and a snapshot saved against another
base image or another guest hardware profile is refused. Snapshots survive
'loco stop'; 'loco stop --destroy' deletes them with the overlays.`,
	}
	cmd.AddCommand(newSnapshotSaveCmd(g), newSnapshotListCmd(g), newSnapshotDeleteCmd(g))
	return cmd
}

func newSnapshotSaveCmd(g *globals) *cobra.Command {
	var sf specFlags
	name := "default"
	cmd := &cobra.Command{
		Use:   "save [CLUSTER|FILE]",
		Short: "Save every running guest's state",
		Long: `save pauses every running guest of the cluster, saves each one's memory,
devices and disk into its overlay under NAME (replacing a snapshot of that
name), then resumes them all, so the snapshot is one instant of the whole
LAN. It prints a line per guest as it is saved.`,
		Example: "  loco snapshot save demo --name lobby\n  loco snapshot save configs/demo.hcl",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			start := time.Now()
			snap, err := cluster.SaveSnapshot(cmd.Context(), g.log, dir, name, func(e cluster.SaveEvent) {
				switch {
				case e.Saved:
					fmt.Fprintf(out, "%s: saved in %.2f s (%s of memory and devices)\n", e.Guest, e.Took.Seconds(), mib(e.VMStateSize))
				case e.Took > 0:
					fmt.Fprintf(out, "%s: not saved after %.2f s: %v\n", e.Guest, e.Took.Seconds(), e.Err)
				default:
					fmt.Fprintf(out, "%s: not saved: %v\n", e.Guest, e.Err)
				}
			})
			if snap != nil {
				var total int64
				for _, sg := range snap.Guests {
					total += sg.VMStateSize
				}
				fmt.Fprintf(out, "snapshot %q: %d guests, %s, in %.2f s; start from it with `loco run --from %s`\n",
					snap.Name, len(snap.Guests), mib(total), time.Since(start).Seconds(), snap.Name)
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&name, "name", name, "the snapshot's name (letters, digits, '.', '_', '-')")
	return cmd
}

func newSnapshotListCmd(g *globals) *cobra.Command {
	var sf specFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [CLUSTER|FILE]",
		Short:   "List a cluster's snapshots: name, guests, size, when, base image",
		Example: "  loco snapshot list demo\n  loco snapshot list --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			list, err := cluster.ListSnapshots(cmd.Context(), dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if list == nil {
					list = []cluster.SnapshotSummary{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintf(out, "no snapshots in %s; save one with `loco snapshot save`\n", dir)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tGUESTS\tSIZE\tSAVED\tBASE IMAGE")
			for _, s := range list {
				if s.Err != "" {
					fmt.Fprintf(tw, "%s\t-\t-\t-\tunreadable: %s\n", s.Name, s.Err)
					continue
				}
				guests := fmt.Sprint(len(s.Guests))
				if s.Present < len(s.Guests) {
					guests = fmt.Sprintf("%d (%d missing)", len(s.Guests), len(s.Guests)-s.Present)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, guests, mib(s.Bytes), s.Created.Local().Format("2006-01-02 15:04:05"), s.Base)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSnapshotDeleteCmd(g *globals) *cobra.Command {
	var sf specFlags
	cmd := &cobra.Command{
		Use:     "delete [CLUSTER|FILE] NAME",
		Short:   "Delete a snapshot from every guest's overlay",
		Example: "  loco snapshot delete demo lobby\n  loco snapshot delete lobby",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[len(args)-1]
			dir, err := stateDirArg(cmd, &sf, args[:len(args)-1])
			if err != nil {
				return err
			}
			if err := cluster.DeleteSnapshot(cmd.Context(), g.log, dir, name); err != nil {
				if errors.Is(err, cluster.ErrNoSnapshot) {
					return fmt.Errorf("%w; `loco snapshot list` shows the saved ones", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %q deleted from %s\n", name, filepath.Join(dir, "guests"))
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func mib(b int64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(b)/(1<<20)), ".0") + " MiB"
}
