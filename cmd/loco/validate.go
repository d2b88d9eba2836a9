package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/pluginhost"
)

func newValidateCmd(g *globals) *cobra.Command {
	var sf specFlags
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a cluster spec, including each plugin's block",
		Long: `validate reads the spec, then starts every plugin it names, asks each for its
configuration schema and checks the plugin's block against it. Nothing is
booted. It also checks what this host can do: the machine type against its
QEMU's list, each guest's memory against the host's. Problems are printed as file:line:column with the offending line;
the exit code is 1 when there is any.`,
		Example: "  loco validate configs/demo.hcl\n  loco validate --var guests=9 configs/demo.hcl",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, l, err := sf.load(cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			h := pluginhost.New(g.log)
			defer h.Close()
			// What the host cannot give (machine type, memory), then the
			// plugins' blocks: every mistake plan and run would hit.
			diags := cluster.CheckHost(ctx, c)
			_, pd := h.Load(ctx, c, plan.Facts(c))
			diags = append(diags, pd...)
			if len(diags) > 0 {
				printDiags(cmd.ErrOrStderr(), l, diags)
			}
			if diags.HasErrors() {
				return exitError{1}
			}
			if err := cluster.CheckRuntime(ctx, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: cluster %q is valid (%d instances, %d plugins)\n", args[0], c.Name, c.Instances, len(c.Plugins))
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
