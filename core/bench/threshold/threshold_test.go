package threshold

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		v    float64
		pass []float64
		fail []float64
	}{
		{"glass_p50_ms <= 60", true, 60, []float64{60, 10}, []float64{60.1}},
		{"  boot_s<30 ", true, 30, []float64{29.9}, []float64{30}},
		{"fps >= 9.5", true, 9.5, []float64{9.5, 30}, []float64{9}},
		{"drops == 0", true, 0, []float64{0}, []float64{1}},
		{"cpu_pct > 1e-3", true, 0.001, []float64{1}, []float64{0}},
		{"x != 2", true, 2, []float64{1}, []float64{2}},
		{"glass_p50_ms =< 60", false, 0, nil, nil},
		{"glass_p50_ms <= sixty", false, 0, nil, nil},
		{"<= 60", false, 0, nil, nil},
		{"", false, 0, nil, nil},
	} {
		r, err := Parse(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "METRIC OP NUMBER") && !strings.Contains(err.Error(), "not a number") {
				t.Errorf("%q: unhelpful error %v", tc.in, err)
			}
			continue
		}
		if r.Value != tc.v {
			t.Errorf("%q: value %v", tc.in, r.Value)
		}
		for _, v := range tc.pass {
			if !r.Holds(v) {
				t.Errorf("%q fails %v", tc.in, v)
			}
		}
		for _, v := range tc.fail {
			if r.Holds(v) {
				t.Errorf("%q passes %v", tc.in, v)
			}
		}
	}
}
