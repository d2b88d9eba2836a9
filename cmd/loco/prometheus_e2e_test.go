package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/testenv"
)

// TestPrometheusScrapesTheCluster: Debian's Prometheus, configured as
// docs/api.md says (bearer token from a file), scrapes a running cluster
// with the LAN, stream and input plugins, and its query API returns the
// guest, plugin, LAN, stream, input and API series.
func TestPrometheusScrapesTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two guests")
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is missing: run make deps (Debian package prometheus)")
	}
	e := newE2E(t)
	spec, withInput, withLAN := e.streamSpec("prom", 2, "")
	if !withInput || !withLAN {
		t.Fatal("the tree lacks plugins/input-qmp or plugins/network-socket")
	}
	e.MustRun("run", "--detach", spec)
	for i := 0; i < 2; i++ {
		e.WaitReady("prom", i, 1)
	}
	base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "prom"))
	if err != nil {
		t.Fatal(err)
	}
	// A screenshot and a mouse move, so the input plugin has something to count.
	apiGetRaw(t, base, tok, "/api/instances/0/screenshot")
	req, _ := http.NewRequest("POST", base+"/api/instances/0/input", strings.NewReader(`{"events": [{"rel": {"dx": 4, "dy": 0}}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sending input: %v %v", err, resp)
	}

	dir := t.TempDir()
	tokFile := filepath.Join(dir, "loco-token")
	os.WriteFile(tokFile, []byte(tok), 0o600)
	u, _ := url.Parse(base)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: loco
    authorization:
      credentials_file: %s
    static_configs:
      - targets: ["%s"]
`, tokFile, u.Host)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	logFile, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", lastChars(string(b), 3000))
		}
	})

	queryErr := func(q string) ([]promSample, error) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []promSample `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return nil, err
		}
		if r.Status != "success" {
			return nil, fmt.Errorf("%s: %s", r.Status, r.Error)
		}
		return r.Data.Result, nil
	}
	query := func(q string) []promSample { r, _ := queryErr(q); return r }
	// What each query must return: at least n series, and every series'
	// labels must include want.
	checks := []struct {
		q    string
		n    int
		want map[string]string
	}{
		{`up{job="loco"} == 1`, 1, nil},
		{`loco_guest_up == 1`, 2, nil},
		{`loco_guest_memory_rss_bytes > 1e6`, 2, nil},
		{`loco_plugin_restarts_total`, 3, nil},
		{`sum by (guest) (loco_lan_frames_total{direction="rx",ethertype="IPv4"}) > 0`, 2, nil},
		{`loco_lan_reachable == 1`, 2, map[string]string{"plugin": "socket"}},
		{`loco_lan_rtt_seconds_count > 0`, 2, map[string]string{"plugin": "socket"}},
		{`loco_lan_drops_total{reason="queue_full"}`, 1, nil},
		{`loco_stream_viewers`, 4, map[string]string{"plugin": "webrtc"}},
		{`loco_stream_encode_seconds_bucket{le="+Inf"}`, 4, nil},
		{`loco_input_screenshot_seconds_count{guest="prom-0"} >= 1`, 1, map[string]string{"plugin": "qmp"}},
		{`loco_input_events_total{guest="prom-0",type="rel"} >= 1`, 1, map[string]string{"plugin": "qmp"}},
		{`loco_api_requests_total{route="GET /metrics",code="200"} > 0`, 1, nil},
		{`histogram_quantile(0.5, sum by (le) (rate(loco_api_request_duration_seconds_bucket[30s])))`, 1, nil},
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, c := range checks {
		var got []promSample
		for {
			got = query(c.q)
			if len(got) >= c.n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query %s: %d series, want %d: %+v", c.q, len(got), c.n, got)
			}
			time.Sleep(500 * time.Millisecond)
		}
		for _, s := range got {
			for k, v := range c.want {
				if s.Metric[k] != v {
					t.Errorf("query %s: series %v lacks %s=%q", c.q, s.Metric, k, v)
				}
			}
		}
		t.Logf("%s: %d series, e.g. %v = %v", c.q, len(got), got[0].Metric, got[0].Value[1])
	}
	t.Run("the Grafana dashboard's queries", func(t *testing.T) {
		checkDashboard(t, queryErr, query)
	})
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func apiGetRaw(t *testing.T, base, tok, path string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
	}
}

func lastChars(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// checkDashboard runs every query of configs/grafana/loco.json against the
// Prometheus that scraped the cluster: each must parse, and every loco
// series it names must exist (so a renamed metric breaks this test, not a
// user's dashboard).
func checkDashboard(t *testing.T, queryErr func(string) ([]promSample, error), query func(string) []promSample) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "configs", "grafana", "loco.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	vars := strings.NewReplacer("$job", ".*", "$guest", ".*", "$__rate_interval", "10s", "$__range", "5m")
	names := regexp.MustCompile(`loco_[a-z_]+`)
	optional := map[string]bool{ // series only some clusters have
		"loco_lan_uplink_reachable": true, "loco_lan_uplink_rtt_seconds": true, "loco_input_errors_total": true,
	}
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			n++
			q := vars.Replace(tg.Expr)
			if _, err := queryErr(q); err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, q, err)
			}
			for _, m := range names.FindAllString(q, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if optional[base] {
					continue
				}
				if len(query(fmt.Sprintf(`{__name__=~"%s(_bucket)?"}`, base))) == 0 {
					t.Errorf("panel %q names %s, which the cluster does not export", p.Title, m)
				}
			}
		}
	}
	t.Logf("%d dashboard queries checked", n)
}
