package api

import (
	"io"

	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/locolan/loco/sdk"
)

// scrape parses /metrics with Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics", token)
	if code != 200 {
		t.Fatal(code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// series finds the sample of fam whose labels include want.
func series(fams map[string]*dto.MetricFamily, fam string, want map[string]string) *dto.Metric {
	f := fams[fam]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMetricsGuests(t *testing.T) {
	srv := newTestServer(t)
	fams := scrape(t, srv.URL)
	if m := series(fams, "loco_guest_up", map[string]string{"guest": "t-0"}); m == nil || m.Gauge.GetValue() != 1 {
		t.Errorf("loco_guest_up{guest=t-0}: %v", m)
	}
	if m := series(fams, "loco_guest_up", map[string]string{"guest": "t-1"}); m == nil || m.Gauge.GetValue() != 0 {
		t.Errorf("loco_guest_up{guest=t-1}: %v", m)
	}
	if m := series(fams, "loco_guest_restarts_total", map[string]string{"guest": "t-1"}); m == nil || m.Counter.GetValue() != 2 {
		t.Errorf("loco_guest_restarts_total{guest=t-1}: %v", m)
	}
	if fams["loco_guest_restarts_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("restarts are a %v", fams["loco_guest_restarts_total"].GetType())
	}
	// Guest 0 is this process: real /proc values.
	if m := series(fams, "loco_guest_memory_rss_bytes", map[string]string{"guest": "t-0"}); m == nil || m.Gauge.GetValue() < 1<<20 {
		t.Errorf("RSS of t-0: %v", m)
	}
	if m := series(fams, "loco_guest_uptime_seconds", map[string]string{"guest": "t-0"}); m == nil || m.Gauge.GetValue() < 59 {
		t.Errorf("uptime of t-0: %v", m)
	}
	if series(fams, "loco_guest_cpu_seconds_total", map[string]string{"guest": "t-0"}) == nil {
		t.Error("no CPU seconds for t-0")
	}
	if series(fams, "loco_guest_cpu_seconds_total", map[string]string{"guest": "t-1"}) != nil {
		t.Error("CPU seconds for the stopped t-1")
	}
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[f] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", f)
		}
	}
}

func TestMetricsAPIRequests(t *testing.T) {
	srv := newTestServer(t)
	get(t, srv.URL+"/api/instances", token)
	get(t, srv.URL+"/api/instances", "wrong")
	get(t, srv.URL+"/api/nope/1", token)
	fams := scrape(t, srv.URL)
	if m := series(fams, "loco_api_requests_total", map[string]string{"route": "GET /api/instances", "code": "200"}); m == nil || m.Counter.GetValue() != 1 {
		t.Errorf("200s of GET /api/instances: %v", m)
	}
	if m := series(fams, "loco_api_requests_total", map[string]string{"route": "GET /api/instances", "code": "401"}); m == nil || m.Counter.GetValue() != 1 {
		t.Errorf("401s of GET /api/instances: %v", m)
	}
	if m := series(fams, "loco_api_requests_total", map[string]string{"route": "other", "code": "404"}); m == nil {
		t.Errorf("no series for unknown paths")
	}
	h := series(fams, "loco_api_request_duration_seconds", map[string]string{"route": "GET /api/instances"})
	if h == nil || h.Histogram.GetSampleCount() != 2 {
		t.Errorf("latency histogram of GET /api/instances: %v", h)
	}
}

func TestMetricsOpenMetrics(t *testing.T) {
	srv := newTestServer(t)
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	if !strings.HasSuffix(string(b), "# EOF\n") || !strings.Contains(string(b), `loco_guest_restarts_total{guest="t-1"} 2`) {
		t.Errorf("not an OpenMetrics exposition:\n%s", b)
	}
}

// familyCollector stands in for a plugin's answer: it feeds families
// through emitFamily, the conversion pluginCollector applies to every
// plugin's Metrics reply (the RPC itself is tested in sdk, the whole path
// with real plugins in cmd/loco).
type familyCollector struct {
	fams []sdk.MetricFamily
	errs *[]error
}

func (familyCollector) Describe(chan<- *prometheus.Desc) {}
func (c familyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.fams {
		if err := emitFamily(ch, "socket", f); err != nil {
			*c.errs = append(*c.errs, err)
		}
	}
}

func TestPluginFamilies(t *testing.T) {
	h := sdk.NewHistogram(0.001, 0.01)
	h.Observe(0.0004)
	h.Observe(0.02)
	rtt := sdk.MetricFamily{Name: "loco_lan_rtt_seconds", Help: "RTT.", Type: sdk.Histogram, Labels: []string{"guest"}}
	rtt.AddHistogram(h, `odd "name"\`)
	frames := sdk.MetricFamily{Name: "loco_lan_frames_total", Help: "Frames.", Type: sdk.Counter, Labels: []string{"guest", "direction", "ethertype"}}
	frames.Add(5, "t-0", "rx", "0x0800")
	bad := sdk.MetricFamily{Name: "loco_bad", Type: sdk.Gauge, Labels: []string{"plugin"}}
	bad.Add(1, "x")
	var errs []error
	reg := prometheus.NewRegistry()
	reg.MustRegister(familyCollector{fams: []sdk.MetricFamily{rtt, frames, bad}, errs: &errs})
	srv := httpTestHandler(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	resp, err := http.Get(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `label "plugin"`) {
		t.Errorf("the family with a plugin label: %v", errs)
	}
	if fams["loco_bad"] != nil {
		t.Error("a refused family was served")
	}
	m := series(fams, "loco_lan_frames_total", map[string]string{"plugin": "socket", "guest": "t-0", "ethertype": "0x0800"})
	if m == nil || m.Counter.GetValue() != 5 {
		t.Errorf("frames: %v", fams["loco_lan_frames_total"])
	}
	m = series(fams, "loco_lan_rtt_seconds", map[string]string{"plugin": "socket", "guest": `odd "name"\`})
	if m == nil || m.Histogram.GetSampleCount() != 2 || m.Histogram.Bucket[0].GetCumulativeCount() != 1 || m.Histogram.Bucket[1].GetCumulativeCount() != 1 {
		t.Errorf("rtt histogram (label escaping, buckets): %v", fams["loco_lan_rtt_seconds"])
	}
}

func httpTestHandler(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
