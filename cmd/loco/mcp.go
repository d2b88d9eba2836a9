package main

import (
	"net/http"
	"path/filepath"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/mcptools"
)

func newMCPCmd(g *globals) *cobra.Command {
	var sf specFlags
	cmd := &cobra.Command{
		Use:   "mcp [FILE|CLUSTER]",
		Short: "Serve a running cluster's guests to AI agents over MCP (stdio)",
		Long: `mcp speaks the Model Context Protocol on stdin and stdout, so an AI
computer-use agent can see and drive the guests of a running cluster. Its
tools: list_instances, screenshot, click, move, type and key. It talks to
the cluster's HTTP API with the token from <state_dir>/api-token, so the
cluster must run (loco run) and have an input plugin (input "qmp" {}).

Pixel coordinates are those of the guest's current screen, as the
screenshot tool shows it. Logs go to stderr; stdout carries the protocol.`,
		Example: `  loco mcp demo
  # in an MCP client's configuration:
  {"command": "loco", "args": ["mcp", "demo"]}`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			base, token, err := cluster.APIEndpoint(dir)
			if err != nil {
				return err
			}
			c := client.New(base, token, &http.Client{Timeout: 2 * time.Minute})
			g.log.Info("serving MCP on stdio", "cluster", filepath.Base(dir), "api", base)
			return mcptools.NewServer(c, version).Run(cmd.Context(), &mcp.StdioTransport{})
		},
	}
	sf.register(cmd)
	return cmd
}
