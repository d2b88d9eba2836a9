// Command loco runs a LAN party of emulated PCs: it reads a cluster spec,
// boots QEMU guests on one virtual Ethernet segment and serves them to
// browsers and programs.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

// exitError carries an exit code out of a command without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	err := newRoot().Execute()
	plugin.CleanupClients()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "loco:", err)
		os.Exit(1)
	}
}

type globals struct {
	logLevel string
	log      *slog.Logger
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "loco",
		Short: "Run a LAN party of emulated PCs",
		Long: `loco boots QEMU guests from one cluster spec (HCL), joins them on one shared
virtual Ethernet segment, and serves their screens, sound and input to a
browser and to programs. Networking, streaming and input are plugins.

Start with:  loco validate configs/demo.hcl && loco run configs/demo.hcl`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
			}
			g.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			slog.SetDefault(g.log)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(newVersionCmd(), newValidateCmd(g), newPluginsCmd(g))
	root.AddCommand(newBenchCmd(g))    // bench.go
	root.AddCommand(newScenarioCmd(g)) // scenario.go
	for _, c := range moreCommands(g) {
		root.AddCommand(c)
	}
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print loco's version and the plugin API versions it speaks",
		Example: "  loco version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "loco %s\nplugin API versions: %v\n", version, apiVersions())
			return nil
		},
	}
}
