package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/sdk"
)

// specFlags are the flags of every command that reads a spec.
type specFlags struct {
	vars []string
}

func (f *specFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set a variable: --var name=value (repeatable; beats LOCO_VAR_name and the default)")
}

// load reads the spec; on errors it prints them with source lines and
// returns exit code 1.
func (f *specFlags) load(w io.Writer, path string) (*spec.Cluster, *spec.Loader, error) {
	l := spec.NewLoader()
	l.Vars = map[string]string{}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("--var %q: write name=value", kv)
		}
		l.Vars[k] = v
	}
	c, diags := l.Load(path)
	if diags.HasErrors() || len(diags) > 0 {
		spec.WriteDiagnostics(w, l.Files(), diags)
	}
	if diags.HasErrors() {
		return nil, nil, exitError{1}
	}
	return c, l, nil
}

func printDiags(w io.Writer, l *spec.Loader, diags hcl.Diagnostics) {
	spec.WriteDiagnostics(w, l.Files(), diags)
}

func apiVersions() []int { return sdk.APIVersions }
