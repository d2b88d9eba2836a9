package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/runtime/kubernetes"
)

func newPlanCmd(g *globals) *cobra.Command {
	var sf specFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Print what run would start: every guest's QEMU command line, files and sockets",
		Long: `plan resolves the accelerator, asks the plugins for their QEMU arguments and
prints the plan. Nothing is booted and no state is written.`,
		Example: "  loco plan configs/demo.hcl\n  loco plan --json configs/demo.hcl | jq '.guests[0].args'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, l, err := sf.load(cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			if c.Runtime.Kube != nil {
				// The plan as the pods run it (no local probe, no plugins).
				p, err := kubernetes.PodPlan(c)
				if err != nil {
					return err
				}
				if asJSON {
					return p.WriteJSON(cmd.OutOrStdout())
				}
				return p.WriteText(cmd.OutOrStdout())
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			p, diags, err := cluster.Preview(ctx, c, cluster.Options{Log: g.log})
			if len(diags) > 0 {
				printDiags(cmd.ErrOrStderr(), l, diags)
			}
			if err != nil {
				return err
			}
			if diags.HasErrors() {
				return exitError{1}
			}
			if asJSON {
				return p.WriteJSON(cmd.OutOrStdout())
			}
			return p.WriteText(cmd.OutOrStdout())
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
