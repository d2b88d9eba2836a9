package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/cluster"
)

var instanceName = regexp.MustCompile(`^([a-z][a-z0-9-]*)-(\d+)$`)

func newLogsCmd(g *globals) *cobra.Command {
	var sf specFlags
	var follow bool
	var clusterArg string
	cmd := &cobra.Command{
		Use:   "logs INSTANCE",
		Short: "Print a guest's serial console log",
		Long: `logs prints what the guest wrote to its first serial port (ttyS0), kept
across restarts in the guest's state directory. INSTANCE is the guest's name
(CLUSTER-INDEX, e.g. demo-1), or an index with --cluster.`,
		Example: "  loco logs demo-0\n  loco logs -f demo-2\n  loco logs --cluster configs/demo.hcl 1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, idx := clusterArg, -1
			if m := instanceName.FindStringSubmatch(args[0]); m != nil && clusterArg == "" {
				name, idx = m[1], atoi(m[2])
			} else if n, err := strconv.Atoi(args[0]); err == nil && clusterArg != "" {
				idx = n
			}
			if idx < 0 {
				return fmt.Errorf("instance %q: name a guest as CLUSTER-INDEX (demo-0), or give --cluster and an index", args[0])
			}
			dir, err := stateDirArg(cmd, &sf, []string{name})
			if err != nil {
				return err
			}
			st, _, err := cluster.Inspect(dir)
			if err != nil {
				return err
			}
			if idx >= len(st.Plan.Guests) {
				return fmt.Errorf("cluster %s has %d guests; there is no instance %d", st.Cluster, len(st.Plan.Guests), idx)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return tail(ctx, cmd.OutOrStdout(), st.Plan.Guests[idx].SerialLog, follow)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the guest writes, until Ctrl-C")
	cmd.Flags().StringVar(&clusterArg, "cluster", "", "the cluster (name or spec file) when INSTANCE is an index")
	return cmd
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// tail copies the file, then with follow keeps copying what is appended.
func tail(ctx context.Context, w io.Writer, path string, follow bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no serial log yet at %s: the guest has not started", path)
		}
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
