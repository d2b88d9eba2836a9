package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/pluginhost"
)

func newPluginsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the plugins loco can find, and why a candidate was skipped",
		Long: `plugins searches $LOCO_PLUGIN_PATH, the directory of the loco binary and
~/.local/share/loco/plugins for files named loco-plugin-<kind>-<name>, starts
each usable one to ask its version and API version, and prints a table. The
first file found for a kind and name wins; later ones are listed as shadowed.`,
		Example: "  loco plugins\n  LOCO_PLUGIN_PATH=./bin loco plugins",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dirs := pluginhost.SearchDirs()
			fmt.Fprintf(cmd.OutOrStdout(), "searched: %s\n\n", strings.Join(dirs, ", "))
			h := pluginhost.New(g.log)
			defer h.Close()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tAPI\tPATH\tSTATUS")
			for _, c := range pluginhost.Discover(dirs) {
				version, api, status := "-", "-", "ok"
				if c.Skipped != "" {
					status = "skipped: " + c.Skipped
				} else {
					ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Second)
					p, err := h.Start(ctx, c, "")
					cancel()
					if err != nil {
						status = "skipped: " + err.Error()
					} else {
						version, api = p.Info().Version, fmt.Sprint(p.APIVersion())
						p.Stop()
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Name, version, api, c.Path, status)
			}
			return tw.Flush()
		},
	}
}
