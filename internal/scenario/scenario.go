// Package scenario reads loco scenario files (HCL: steps per guest of
// input to send and screen or console states to wait for) and runs them
// against a running cluster through its API, timing each step, saving a
// screenshot of every guest at every step and reading the LAN counters.
// docs/scenario.md describes the format; `loco scenario run` is its CLI.
package scenario

import (
	"fmt"
	"image/color"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Scenario is one decoded scenario file.
type Scenario struct {
	Name    string
	Spec    string // the cluster spec, absolute
	Timeout time.Duration
	Steps   []Step
}

// Step is done by every guest it names at once; the next step starts when
// all of them reached this one.
type Step struct {
	Name    string
	Range   hcl.Range
	Guests  []int
	Keys    []string         // key names (sdk/input qcodes), each pressed and released
	Type    string           // text typed on the US keyboard
	Console *regexp.Regexp   // printed after the step began
	Seen    []*regexp.Regexp // each printed at any time, e.g. that the guest is ready
	Screen  []Rule
	Timeout time.Duration
}

// Rule holds when at least MinFraction of the region's pixels are within
// Tolerance (per channel) of Color.
type Rule struct {
	X, Y, W, H  int
	Color       color.RGBA
	Tolerance   int
	MinFraction float64
	Range       hcl.Range
}

type fileBlock struct {
	Scenario scenarioBlock `hcl:"scenario,block"`
}

type scenarioBlock struct {
	Name    string      `hcl:"name,label"`
	Spec    string      `hcl:"spec"`
	Timeout *string     `hcl:"timeout,optional"`
	Steps   []stepBlock `hcl:"step,block"`
}

type stepBlock struct {
	Name    string        `hcl:"name,label"`
	Guests  []int         `hcl:"guests"`
	Keys    []string      `hcl:"keys,optional"`
	Type    *string       `hcl:"type,optional"`
	Console *string       `hcl:"console,optional"`
	Seen    []string      `hcl:"console_seen,optional"`
	Timeout *string       `hcl:"timeout,optional"`
	Screens []screenBlock `hcl:"screen,block"`
}

type screenBlock struct {
	Region      []int    `hcl:"region"`
	Color       string   `hcl:"color"`
	Tolerance   *int     `hcl:"tolerance,optional"`
	MinFraction *float64 `hcl:"min_fraction,optional"`
}

// Load parses and checks the scenario at path. Every problem is a
// diagnostic with the file position; files is for printing them.
func Load(path string) (*Scenario, map[string]*hcl.File, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, p.Files(), diags
	}
	var fb fileBlock
	if d := gohcl.DecodeBody(f.Body, nil, &fb); d.HasErrors() {
		return nil, p.Files(), append(diags, d...)
	}
	s, d := check(fb.Scenario, f, filepath.Dir(path))
	return s, p.Files(), append(diags, d...)
}

// attrRange is where attribute name's value is written in body, or
// fallback when it is not there.
func attrRange(body hcl.Body, name string, fallback hcl.Range) hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			return a.Expr.Range()
		}
	}
	return fallback
}

func errAt(r hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
}

func duration(s *string, def time.Duration, r hcl.Range, what string) (time.Duration, *hcl.Diagnostic) {
	if s == nil {
		return def, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d <= 0 {
		return 0, errAt(r, "Invalid "+what, fmt.Sprintf("%q is not a positive duration such as \"90s\" or \"5m\".", *s))
	}
	return d, nil
}

// blockRanges finds each block's definition range by type and first label,
// for diagnostics that point at a block rather than an attribute.
func blockRanges(f *hcl.File) map[string]hcl.Range {
	out := map[string]hcl.Range{}
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "scenario", LabelNames: []string{"name"}}}})
	for _, b := range content.Blocks {
		out["scenario"] = b.DefRange
		out["scenario.timeout"] = attrRange(b.Body, "timeout", b.DefRange)
		sc, _, _ := b.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "step", LabelNames: []string{"name"}}}})
		for _, st := range sc.Blocks {
			out["step."+st.Labels[0]] = st.DefRange
			body := st.Body
			ss, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "screen"}}})
			for i, sb := range ss.Blocks {
				out[fmt.Sprintf("step.%s.screen.%d", st.Labels[0], i)] = sb.DefRange
			}
		}
	}
	return out
}

func check(sb scenarioBlock, f *hcl.File, dir string) (*Scenario, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	ranges := blockRanges(f)
	s := &Scenario{Name: sb.Name, Spec: sb.Spec}
	if !filepath.IsAbs(s.Spec) {
		s.Spec = filepath.Join(dir, s.Spec)
	}
	if abs, err := filepath.Abs(s.Spec); err == nil {
		s.Spec = abs
	}
	var d *hcl.Diagnostic
	if s.Timeout, d = duration(sb.Timeout, 2*time.Minute, ranges["scenario.timeout"], "timeout"); d != nil {
		diags = append(diags, d)
	}
	if len(sb.Steps) == 0 {
		diags = append(diags, errAt(ranges["scenario"], "No steps", "A scenario needs at least one step block."))
	}
	seen := map[string]bool{}
	for _, stb := range sb.Steps {
		r := ranges["step."+stb.Name]
		st := Step{Name: stb.Name, Range: r, Guests: stb.Guests, Keys: stb.Keys}
		if seen[stb.Name] {
			diags = append(diags, errAt(r, "Duplicate step", fmt.Sprintf("Another step is already called %q.", stb.Name)))
		}
		seen[stb.Name] = true
		if len(stb.Guests) == 0 {
			diags = append(diags, errAt(r, "No guests", "guests lists the guest indexes (0, 1, ...) that do this step."))
		}
		for _, g := range stb.Guests {
			if g < 0 {
				diags = append(diags, errAt(r, "Invalid guest index", fmt.Sprintf("%d: guest indexes start at 0.", g)))
			}
		}
		for _, k := range stb.Keys {
			if strings.TrimSpace(k) == "" || strings.ContainsAny(k, " \t") {
				diags = append(diags, errAt(r, "Invalid key", fmt.Sprintf("%q: keys are QEMU key names such as \"f5\", \"ret\" or \"a\".", k)))
			}
		}
		if stb.Type != nil {
			st.Type = *stb.Type
		}
		if stb.Console != nil {
			re, err := regexp.Compile(*stb.Console)
			if err != nil {
				diags = append(diags, errAt(r, "Invalid console pattern", err.Error()))
			}
			st.Console = re
		}
		for _, p := range stb.Seen {
			re, err := regexp.Compile(p)
			if err != nil {
				diags = append(diags, errAt(r, "Invalid console_seen pattern", err.Error()))
			}
			st.Seen = append(st.Seen, re)
		}
		if st.Timeout, d = duration(stb.Timeout, s.Timeout, r, "step timeout"); d != nil {
			diags = append(diags, d)
		}
		for i, scr := range stb.Screens {
			rr := ranges[fmt.Sprintf("step.%s.screen.%d", stb.Name, i)]
			rule := Rule{Tolerance: 32, MinFraction: 0.9, Range: rr}
			if len(scr.Region) != 4 || scr.Region[2] <= 0 || scr.Region[3] <= 0 || scr.Region[0] < 0 || scr.Region[1] < 0 {
				diags = append(diags, errAt(rr, "Invalid region", "region is [x, y, width, height] in screen pixels, width and height above 0."))
			} else {
				rule.X, rule.Y, rule.W, rule.H = scr.Region[0], scr.Region[1], scr.Region[2], scr.Region[3]
			}
			c, err := parseColor(scr.Color)
			if err != nil {
				diags = append(diags, errAt(rr, "Invalid color", err.Error()))
			}
			rule.Color = c
			if scr.Tolerance != nil {
				if *scr.Tolerance < 0 || *scr.Tolerance > 255 {
					diags = append(diags, errAt(rr, "Invalid tolerance", "tolerance is 0..255 per channel."))
				}
				rule.Tolerance = *scr.Tolerance
			}
			if scr.MinFraction != nil {
				if *scr.MinFraction <= 0 || *scr.MinFraction > 1 {
					diags = append(diags, errAt(rr, "Invalid min_fraction", "min_fraction is above 0 and at most 1."))
				}
				rule.MinFraction = *scr.MinFraction
			}
			st.Screen = append(st.Screen, rule)
		}
		if len(st.Keys) == 0 && st.Type == "" && st.Console == nil && len(st.Seen) == 0 && len(st.Screen) == 0 {
			diags = append(diags, errAt(r, "Empty step", "A step sends keys or text, or waits for a console line or a screen, or both."))
		}
		s.Steps = append(s.Steps, st)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, diags
}

// parseColor reads "#rrggbb".
func parseColor(s string) (color.RGBA, error) {
	if len(s) != 7 || s[0] != '#' {
		return color.RGBA{}, fmt.Errorf("%q: write colours as \"#rrggbb\"", s)
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return color.RGBA{}, fmt.Errorf("%q: write colours as \"#rrggbb\"", s)
	}
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}, nil
}
