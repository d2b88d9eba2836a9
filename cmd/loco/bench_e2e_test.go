package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/locolan/loco/internal/testenv"
)

// countPlugin is a bench plugin as an outside author writes it: its own
// module, the sdk only. Scenario "count" asks the API for the guests 20
// times and reports how many it saw and how long each call took.
const countPlugin = `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/locolan/loco/sdk"
)

type counter struct{}

var _ sdk.Bench = counter{}

func (counter) Info() sdk.Info           { return sdk.Info{Name: "count", Kind: sdk.KindBench, Version: "0.1.0"} }
func (counter) ConfigSchema() sdk.Schema { return sdk.Schema{} }
func (counter) Configure(context.Context, sdk.Config, sdk.Cluster) error { return nil }

func (counter) Scenarios(context.Context) ([]sdk.Scenario, error) {
	return []sdk.Scenario{{Name: "count", Description: "Counts the guests through GET /api/instances."}}, nil
}

func (counter) Run(ctx context.Context, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	var lat []float64
	var guests []struct{ Name, State string }
	for i := 0; i < 20; i++ {
		r, _ := http.NewRequestWithContext(ctx, "GET", req.APIURL+"/api/instances", nil)
		r.Header.Set("Authorization", "Bearer "+req.APIToken)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return nil, err
		}
		err = json.NewDecoder(resp.Body).Decode(&guests)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET /api/instances: %d %v", resp.StatusCode, err)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		progress(float64(i+1)/20, fmt.Sprintf("call %d/20", i+1))
	}
	var rows []sdk.BenchRow
	for _, g := range guests {
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": g.Name}, Values: map[string]float64{"listed": 1}})
	}
	return append(rows, sdk.BenchRow{Labels: map[string]string{"guest": "all"},
		Values:  map[string]float64{"guests_seen": float64(len(guests)), "wanted": float64(req.Guests), "run": float64(req.Run)},
		Samples: map[string][]float64{"api_ms": lat}}), nil
}

func main() { sdk.Serve(counter{}) }
`

// buildCountPlugin compiles countPlugin as a module of its own.
func buildCountPlugin(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	src := filepath.Join(t.TempDir(), "count")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(countPlugin), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/count\n\ngo 1.26.0\n\n"+
		"require github.com/locolan/loco/sdk v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/locolan/loco/sdk => "+filepath.Join(root, "sdk")+"\n"), 0o644)
	bin := testenv.ShortTempDir(t)
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", filepath.Join(bin, "loco-plugin-bench-count"), "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	return bin
}

// benchSpec is e.Spec with the guest count in variable "guests", as
// --guests needs it, and extra (plugins, bench block) in the cluster.
func (e *e2e) benchSpec(name, extra, listen string) string {
	path := e.Spec(name, 1, extra)
	b, _ := os.ReadFile(path)
	s := "variable \"guests\" {\n  type    = number\n  default = 1\n}\n" +
		strings.Replace(string(b), "instances = 1", "instances = var.guests", 1)
	if listen != "" {
		s = strings.Replace(s, `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", listen), 1)
	}
	os.WriteFile(path, []byte(s), 0o644)
	return path
}

// TestBench: a bench plugin built here serves its scenario end to end
// through loco bench (boot, run through the API, reports, stop); the
// thresholds gate with exit codes and name the rows that break them; the
// HTML report renders its plots in headless Chromium; mistakes fail
// clearly before anything boots.
func TestBench(t *testing.T) {
	e := newE2E(t)
	os.Setenv("LOCO_PLUGIN_PATH", buildCountPlugin(t))
	t.Cleanup(func() { os.Unsetenv("LOCO_PLUGIN_PATH") })
	spec := e.benchSpec("bc", "  bench {\n    thresholds = [\"guests_seen >= 1\"]\n  }\n", "")
	out := filepath.Join(e.Dir, "out")
	bench := func(extra ...string) (string, string, int) {
		return e.Run(append([]string{"bench", spec, "--scenario", "count", "--out", out}, extra...)...)
	}

	t.Run("end to end, two guest counts, two runs", func(t *testing.T) {
		start := time.Now()
		stdout, stderr, code := bench("--guests", "1,2", "--runs", "2")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		t.Logf("4 runs (3 boots... each a fresh cluster per guest count) in %v\n%s%s", time.Since(start).Round(time.Second), stdout, stderr)
		if !strings.Contains(stdout, "PASS guests_seen >= 1") {
			t.Errorf("no PASS line:\n%s", stdout)
		}
		if !strings.Contains(stderr, "guests=2 run 2/2: call 20/20") {
			t.Errorf("no progress from the plugin on stderr:\n%s", stderr)
		}
		var res struct {
			Scenario string `json:"scenario"`
			Passed   bool   `json:"passed"`
			Rows     []struct {
				Guests  int                  `json:"guests"`
				Run     int                  `json:"run"`
				Labels  map[string]string    `json:"labels"`
				Values  map[string]float64   `json:"values"`
				Samples map[string][]float64 `json:"samples"`
			} `json:"rows"`
		}
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		// Per run: a row per guest and a summary: (1+1)*2 + (2+1)*2.
		if len(res.Rows) != 10 || !res.Passed || res.Scenario != "count" {
			t.Fatalf("results.json: %s", b)
		}
		for _, r := range res.Rows {
			if r.Labels["guest"] == "all" && (r.Values["guests_seen"] != float64(r.Guests) || r.Values["run"] != float64(r.Run) || len(r.Samples["api_ms"]) != 20) {
				t.Errorf("summary row %+v: the cluster had %d guests", r, r.Guests)
			}
		}
		f, _ := os.Open(filepath.Join(out, "results.csv"))
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(recs) != 11 || strings.Join(recs[0][:4], ",") != "scenario,guests,run,guest" {
			t.Errorf("results.csv: %v %v", recs, err)
		}
		md, _ := os.ReadFile(filepath.Join(out, "report.md"))
		if !strings.Contains(string(md), "**PASS**") || !strings.Contains(string(md), "| guests | run | guest |") {
			t.Errorf("report.md:\n%s", md)
		}
		if st := e.Status(spec); len(st.Guests) > 0 && st.Guests[0].Running {
			t.Errorf("loco bench left the cluster running: %+v", st)
		}
	})

	t.Run("the HTML report renders its plots offline", func(t *testing.T) {
		ctx := startChromium(t)
		if err := chromedp.Do(ctx, chromedp.Navigate("file://"+filepath.Join(out, "report.html"))); err != nil {
			t.Fatal(err)
		}
		got := pageEval[struct {
			Plots, Drawn, Points int
			Verdict              string
			External             int
		}](t, ctx, `(() => {
			const plots = [...document.querySelectorAll('svg.plot')];
			const drawn = plots.filter((s) => [...s.querySelectorAll('polyline.series')].some((p) => { const b = p.getBBox(); return b.width > 10 && p.points.length > 1; }));
			return {Plots: plots.length, Drawn: drawn.length, Points: document.querySelectorAll('circle.point').length,
				Verdict: document.getElementById('verdict').textContent,
				External: document.querySelectorAll('script, link, img, [src]').length};
		})()`)
		t.Logf("report.html: %+v", got)
		// Scatter plots of guests_seen, listed, run, wanted; api_ms's histogram and CDF.
		if got.Plots < 6 || got.Drawn != got.Plots || got.Points == 0 || got.Verdict != "PASS" || got.External != 0 {
			t.Errorf("report.html: %+v", got)
		}
		t.Logf("screenshot: %s", pageShot(t, ctx, "bench-report.png"))
	})

	t.Run("a failing threshold exits 1 and names the rows", func(t *testing.T) {
		stdout, stderr, code := bench("--guests", "1,2", "--threshold", "guests_seen <= 1", "--threshold", "no_such_metric < 1")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		for _, want := range []string{"FAIL guests_seen <= 1: guests=2 run=1 guest=all is 2", "FAIL no_such_metric < 1: no row has no_such_metric"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, "guests=1 run=1 guest=all is") {
			t.Errorf("a passing row is named:\n%s", stdout)
		}
		md, _ := os.ReadFile(filepath.Join(out, "report.md"))
		if !strings.Contains(string(md), "**FAIL**") {
			t.Errorf("report.md has no FAIL:\n%s", md)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad threshold expression", []string{"--threshold", "guests_seen =< 1"}, `--threshold: threshold "guests_seen =< 1": write METRIC OP NUMBER`},
		{"bad scenario name", []string{"--scenario", "warp-speed"}, `no bench plugin serves scenario "warp-speed"; installed scenarios: boot, count, density, glass-to-glass, input-latency, lan`},
		{"bad guest counts", []string{"--guests", "1,x"}, `--guests "1,x": write guest counts like 1,3,9`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			stdout, stderr, code := bench(tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 1 with %q\n%s\n%s", code, tc.want, stdout, stderr)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v: the mistake should be found before anything boots", d)
			}
		})
	}

	t.Run("a threshold in the spec is checked at its line", func(t *testing.T) {
		bad := e.benchSpec("bc-bad", "  bench {\n    thresholds = [\"fps >> 3\"]\n  }\n", "")
		_, stderr, code := e.Run("bench", bad, "--scenario", "count")
		if code != 1 || !strings.Contains(stderr, "bc-bad.hcl:24:5: error: Invalid threshold") {
			t.Errorf("exit %d:\n%s", code, stderr)
		}
	})

	t.Run("a cluster that fails to boot", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		busy := e.benchSpec("bc-busy", "", lis.Addr().String())
		stdout, stderr, code := e.Run("bench", busy, "--scenario", "count", "--out", out)
		if code != 1 || !strings.Contains(stderr, "booting 1 guests of "+busy) || !strings.Contains(stderr, "address already in use") {
			t.Errorf("exit %d:\n%s\n%s", code, stdout, stderr)
		}
	})
}

// TestBenchScenarios runs every scenario of plugins/bench-loco once with
// one guest and checks that its rows carry the figures docs/benchmarks.md
// names (no speed is asserted: the figures are logged).
func TestBenchScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest per scenario")
	}
	e := newE2E(t)
	spec := e.benchSpec("bs", "  network \"socket\" {}\n  input \"qmp\" {}\n", "")
	// glass-to-glass: the dashboard's 800x600 console (the markers' size)
	// and a stream plugin.
	glass := e.benchSpec("bg", "  network \"socket\" {}\n  input \"qmp\" {}\n  stream \"webrtc\" {}\n", "")
	src, _ := os.ReadFile(glass)
	os.WriteFile(glass, []byte(strings.Replace(string(src), "min_memory = 96", "min_memory = 96\n    append     = \"vga=0x315\"", 1)), 0o644)
	for _, tc := range []struct {
		scenario string
		params   []string
		want     []string // value columns of the guest=all (or only) row
		spec     string   // "" is spec
	}{
		{"boot", nil, []string{"boot_all_s", "boot_p50_s"}, ""},
		{"boot", []string{"--warm"}, []string{"boot_all_s", "boot_p50_s"}, ""},
		// Two guests: traffic between them, typed into their agents.
		{"lan", []string{"--guests", "2", "--param", "window=3", "--param", "udp_count=300", "--param", "bcast_count=20", "--param", "pings=10"},
			[]string{"rtt_p50_ms", "rtt_p95_ms", "segment_drops_per_s", "ping_p50_ms", "udp_pkts_per_s", "udp_mbit_s", "udp_delivered_fraction",
				"udp_bcast_delivered_fraction", "ipx_bcast_delivered_fraction", "ipx_switch_delivered_fraction"}, ""},
		// With a stream plugin: the dashboard open, per tile fps.
		{"density", []string{"--param", "window=4"}, []string{"cpu_pct_per_guest", "rss_mib_per_guest", "plugins_cpu_pct", "total_cpu_pct", "tile_fps", "tile_min_fps"}, glass},
		{"input-latency", []string{"--param", "trials=5"}, []string{"latency_p50_ms", "latency_p95_ms", "screenshot_p50_ms"}, ""},
		{"glass-to-glass", []string{"--param", "trials=5", "--param", "idle_trials=1", "--param", "window=3"},
			[]string{"glass_p50_ms", "glass_p95_ms", "glass_idle_p50_ms", "host_cpu_pct", "guest_cpu_pct", "stream_plugin_cpu_pct", "viewer_kbit_s"}, glass},
	} {
		t.Run(strings.Join(append([]string{tc.scenario}, tc.params...), " "), func(t *testing.T) {
			out := filepath.Join(e.Dir, "out-"+strings.NewReplacer(" ", "", "=", "", "-", "").Replace(t.Name()))
			sp := spec
			if tc.spec != "" {
				sp = tc.spec
			}
			args := append([]string{"bench", sp, "--scenario", tc.scenario, "--out", out}, tc.params...)
			stdout, stderr, code := e.Run(args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			md, _ := os.ReadFile(filepath.Join(out, "report.md"))
			t.Logf("%s", md)
			var res struct {
				Rows []struct {
					Labels map[string]string  `json:"labels"`
					Values map[string]float64 `json:"values"`
				} `json:"rows"`
			}
			b, _ := os.ReadFile(filepath.Join(out, "results.json"))
			json.Unmarshal(b, &res)
			found := map[string]bool{}
			for _, r := range res.Rows {
				for k, v := range r.Values {
					if v > 0 || k == "segment_drops_per_s" {
						found[k] = true
					}
				}
			}
			for _, w := range tc.want {
				if !found[w] {
					t.Errorf("no row has %s > 0:\n%s", w, b)
				}
			}
			if tc.scenario == "lan" {
				// Correctness, not speed: the switch loses no broadcast,
				// and the raw IPX frames reach the other guest's socket.
				for _, r := range res.Rows {
					if r.Labels["guest"] == "all" && (r.Values["ipx_switch_delivered_fraction"] != 1 || r.Values["ipx_bcast_delivered_fraction"] != 1) {
						t.Errorf("IPX broadcasts not all delivered: %v", r.Values)
					}
				}
			}
			if len(tc.params) == 1 && tc.params[0] == "--warm" {
				// Cold and warm side by side, each with its summary.
				starts := map[string]float64{}
				for _, r := range res.Rows {
					if r.Labels["guest"] == "all" {
						starts[r.Labels["start"]] = r.Values["boot_all_s"]
					}
				}
				t.Logf("boot: cold %.2f s, warm %.2f s", starts["cold"], starts["warm"])
				if len(starts) != 2 || starts["cold"] <= 0 || starts["warm"] <= 0 {
					t.Errorf("want a cold and a warm summary row: %v\n%s", starts, b)
				}
			}
			if tc.scenario != "glass-to-glass" {
				return
			}
			// Both backends, side by side: latency for both markers, and
			// a moving screen that reaches the viewer.
			for _, be := range []string{"webrtc", "vnc"} {
				markers, moving := 0, false
				for _, r := range res.Rows {
					if r.Labels["backend"] != be {
						continue
					}
					if r.Values["glass_p50_ms"] > 0 {
						markers++
					}
					if r.Labels["screen"] == "moving" && r.Values["viewer_kbit_s"] > 0 && r.Values["host_cpu_pct"] > 0 {
						moving = true
					}
				}
				if markers != 2 || !moving {
					t.Errorf("backend %s: %d marker rows with glass_p50_ms, a moving row with kbit/s and CPU: %v", be, markers, moving)
				}
			}
		})
	}
}
