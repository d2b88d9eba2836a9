package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/core/spec"
	"github.com/locolan/loco/sdk"
)

// DecodeBlock decodes a plugin's block against the schema the plugin
// declared; errors carry positions in the user's file.
func DecodeBlock(schema sdk.Schema, use spec.PluginUse, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	return hcldec.Decode(use.Body, schema.Spec(), ctx)
}

// ProblemDiagnostics places the problems a plugin found in its configuration
// at the attributes they name in the user's block.
func ProblemDiagnostics(problems []sdk.Problem, use spec.PluginUse) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, pr := range problems {
		sev := hcl.DiagError
		if pr.Warning {
			sev = hcl.DiagWarning
		}
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: pr.Summary, Detail: pr.Detail,
			Subject: pathRange(use.Body, pr.Path, use.DefRange)})
	}
	return diags
}

// pathRange follows an attribute path (block names, then an attribute)
// through the user's block.
func pathRange(body hcl.Body, path []string, fallback hcl.Range) *hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok || len(path) == 0 {
		return fallback.Ptr()
	}
	if a, ok := sb.Attributes[path[0]]; ok {
		return a.SrcRange.Ptr()
	}
	for _, b := range sb.Blocks {
		if b.Type == path[0] {
			if len(path) == 1 {
				return b.TypeRange.Ptr()
			}
			return pathRange(b.Body, path[1:], b.TypeRange)
		}
	}
	return fallback.Ptr()
}

// Set is the plugins of one cluster, by kind.
type Set struct {
	host    *Host
	Plugins map[string]*Plugin
}

// Get is the cluster's plugin of a kind, or nil.
func (s *Set) Get(kind string) *Plugin {
	if s == nil {
		return nil
	}
	return s.Plugins[kind]
}

// Load starts every plugin the cluster names, decodes its block against the
// plugin's schema and configures it. Problems come back as diagnostics in
// the user's file; the plugins that started stay running in the Set (the
// host's Close stops them).
func (h *Host) Load(ctx context.Context, c *spec.Cluster, facts sdk.Cluster) (*Set, hcl.Diagnostics) {
	set := &Set{host: h, Plugins: map[string]*Plugin{}}
	var diags hcl.Diagnostics
	dirs := h.Dirs
	if dirs == nil {
		dirs = SearchDirs()
	}
	cands := Discover(dirs)
	for _, use := range c.Plugins {
		cand, pin, err := resolve(cands, dirs, use, c.Pins[use.Kind+"-"+use.Name])
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown plugin", Detail: err.Error(), Subject: use.DefRange.Ptr()})
			continue
		}
		p, err := h.Start(ctx, cand, pin)
		if err != nil {
			summary := "Plugin failed to start"
			if errors.Is(err, ErrIncompatible) {
				summary = "Plugin speaks another API version"
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: err.Error(), Subject: use.DefRange.Ptr()})
			continue
		}
		set.Plugins[use.Kind] = p
		schema, err := p.Schema(ctx)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin has no usable schema", Detail: err.Error(), Subject: use.DefRange.Ptr()})
			continue
		}
		val, d := DecodeBlock(schema, use, c.EvalContext())
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		problems, err := p.Configure(ctx, val, facts)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin could not be configured", Detail: err.Error(), Subject: use.DefRange.Ptr()})
			continue
		}
		diags = append(diags, ProblemDiagnostics(problems, use)...)
	}
	return set, diags
}

func resolve(cands []Candidate, dirs []string, use spec.PluginUse, pin spec.Pin) (Candidate, string, error) {
	if pin.Path != "" {
		return Candidate{Kind: use.Kind, Name: use.Name, Path: pin.Path}, pin.SHA256, nil
	}
	if c, ok := Find(cands, use.Kind, use.Name); ok {
		return c, pin.SHA256, nil
	}
	var found []string
	for _, c := range cands {
		if c.Skipped == "" {
			found = append(found, fmt.Sprintf("%s %q", c.Kind, c.Name))
		}
	}
	sort.Strings(found)
	list := "none (run `make build`, or set LOCO_PLUGIN_PATH)"
	if len(found) > 0 {
		list = strings.Join(found, ", ")
	}
	return Candidate{}, "", fmt.Errorf("no %s plugin named %q (looked for %s in %s). Plugins found: %s",
		use.Kind, use.Name, use.Binary(), strings.Join(dirs, ", "), list)
}
