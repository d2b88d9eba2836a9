package bench

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/bench/threshold"
	"github.com/locolan/loco/sdk"
)

func rules(t *testing.T, src ...string) []threshold.Rule {
	var out []threshold.Rule
	for _, s := range src {
		r, err := threshold.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func sampleRows() []Row {
	var rows []Row
	for _, n := range []int{1, 3} {
		for run := 1; run <= 2; run++ {
			rows = append(rows,
				Row{Guests: n, Run: run, BenchRow: sdk.BenchRow{Labels: map[string]string{"guest": "d-0"}, Values: map[string]float64{"boot_s": 10 * float64(n)}}},
				Row{Guests: n, Run: run, BenchRow: sdk.BenchRow{Labels: map[string]string{"guest": "all"}, Values: map[string]float64{"lat_p50_ms": 40 + 10*float64(n)},
					Samples: map[string][]float64{"lat_ms": {30, 40, 50, 60 * float64(n)}}}})
		}
	}
	return rows
}

func TestGate(t *testing.T) {
	rows := sampleRows()
	if f := Gate(rows, rules(t, "boot_s < 31", "lat_p50_ms <= 70")); len(f) != 0 {
		t.Errorf("passing rules failed: %v", f)
	}
	f := Gate(rows, rules(t, "boot_s < 20", "nope > 1"))
	if len(f) != 3 {
		t.Fatalf("failures %v, want the two guests=3 rows and the missing metric", f)
	}
	if got := f[0].String(); got != "boot_s < 20: guests=3 run=1 guest=d-0 is 30" {
		t.Errorf("failure reads %q", got)
	}
	if !f[2].Missing || f[2].String() != "nope > 1: no row has nope" {
		t.Errorf("missing metric: %+v %s", f[2], f[2])
	}
}

func TestReports(t *testing.T) {
	res := &Result{Scenario: "demo", Description: "a test", Spec: "x.hcl", Started: time.Now(), Guests: []int{1, 3}, Runs: 2,
		Rows: sampleRows(), Thresholds: []string{"boot_s < 20"}}
	res.Failures = Gate(res.Rows, rules(t, res.Thresholds...))
	dir := t.TempDir()
	if err := WriteReports(dir, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	b, _ := os.ReadFile(filepath.Join(dir, FileJSON))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Rows) != 8 || len(back.Failures) != 2 {
		t.Errorf("JSON: %v %+v", err, back)
	}
	f, _ := os.Open(filepath.Join(dir, FileCSV))
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 9 || strings.Join(recs[0], ",") != "scenario,guests,run,guest,boot_s,lat_p50_ms" || recs[5][4] != "30" || recs[5][5] != "" {
		t.Errorf("CSV: %v %v", recs, err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, FileMarkdown))
	for _, want := range []string{"**FAIL**", "- boot_s < 20: guests=3 run=2 guest=d-0 is 30", "| guests | run | guest | boot_s | lat_p50_ms |", "| 3 | 1 | all |  | 70 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, FileHTML))
	html := string(h)
	// Two scatter plots, a histogram and a CDF; nothing fetched.
	if n := strings.Count(html, `<svg xmlns`); n != 4 {
		t.Errorf("%d plots, want 4", n)
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link"} {
		if bad == "http://" && strings.Count(html, bad) == strings.Count(html, "http://www.w3.org/2000/svg") {
			continue
		}
		if strings.Contains(html, bad) {
			t.Errorf("the HTML report has %q: it must open offline", bad)
		}
	}
	if !strings.Contains(html, `class="bad"`) || !strings.Contains(html, `id="verdict">FAIL`) {
		t.Error("the HTML report does not mark the failing rows")
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{{0, 10, "0 2 4 6 8 10"}, {0, 1, "0 0.2 0.4 0.6 0.8 1"}, {3, 9, "4 6 8"}} {
		var got []string
		for _, v := range ticks(tc.lo, tc.hi, 5) {
			got = append(got, tickLabel(v))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("ticks(%v, %v) = %v, want %s", tc.lo, tc.hi, got, tc.want)
		}
	}
}
