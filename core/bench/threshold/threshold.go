// Package threshold parses and checks the pass/fail rules of `loco bench`
// ("glass_p50_ms <= 60"): a column of the report, a comparison and a
// number. It is pure, so `loco validate` checks the spec's rules too.
package threshold

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Rule is one parsed threshold.
type Rule struct {
	Metric string
	Op     string
	Value  float64
	Source string // as written
}

var ruleRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$`)

// Parse reads "METRIC OP NUMBER"; OP is one of < <= > >= == !=.
func Parse(s string) (Rule, error) {
	m := ruleRE.FindStringSubmatch(s)
	if m == nil {
		return Rule{}, fmt.Errorf("threshold %q: write METRIC OP NUMBER, e.g. \"glass_p50_ms <= 60\" (OP is one of < <= > >= == !=)", s)
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return Rule{}, fmt.Errorf("threshold %q: %q is not a number", s, m[3])
	}
	return Rule{Metric: m[1], Op: m[2], Value: v, Source: strings.TrimSpace(s)}, nil
}

// Holds says whether v passes the rule.
func (r Rule) Holds(v float64) bool {
	switch r.Op {
	case "<":
		return v < r.Value
	case "<=":
		return v <= r.Value
	case ">":
		return v > r.Value
	case ">=":
		return v >= r.Value
	case "==":
		return v == r.Value
	case "!=":
		return v != r.Value
	}
	return false
}

func (r Rule) String() string { return r.Source }
