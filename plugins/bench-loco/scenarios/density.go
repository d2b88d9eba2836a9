package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/locolan/loco/sdk"
)

// runDensity measures what N idle guests cost. Guests still booting are
// not idle: it waits until they answer on the LAN (with a network plugin)
// or until they run and a settle time passed (param settle, default 20s).
func runDensity(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	window, err := param(req, "window", 10)
	if err != nil {
		return nil, err
	}
	settle, err := param(req, "settle", 20)
	if err != nil {
		return nil, err
	}
	if _, err := c.lan(ctx); err == nil {
		if err := waitReachable(ctx, c, req, progress); err != nil {
			return nil, err
		}
	} else {
		err := waitFor(ctx, "every guest running", 5*time.Minute, 250*time.Millisecond, func() (bool, error) {
			in, err := c.instances(ctx)
			if err != nil {
				return false, err
			}
			for _, g := range in {
				if g.State != "running" {
					return false, nil
				}
			}
			return len(in) > 0, nil
		})
		if err != nil {
			return nil, err
		}
		progress(0, fmt.Sprintf("settling for %.0f s", settle))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(settle * float64(time.Second))):
		}
	}
	m0, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	w := time.Duration(window * float64(time.Second))
	for time.Since(t0) < w {
		progress(time.Since(t0).Seconds()/window, fmt.Sprintf("measuring: %.0f/%.0f s", time.Since(t0).Seconds(), window))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	m1, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	cpu := func(fam, key string, labels ...string) (float64, bool) {
		a, okA := value(m0, fam, key, labels...)
		b, okB := value(m1, fam, key, labels...)
		return 100 * (b - a) / secs, okA && okB
	}
	var rows []sdk.BenchRow
	var guestCPU, guestRSS float64
	guests := 0
	for _, m := range family(m1, "loco_guest_memory_rss_bytes") {
		name := label(m, "guest")
		pct, ok := cpu("loco_guest_cpu_seconds_total", "guest", name)
		if !ok {
			continue
		}
		rss := m.GetGauge().GetValue() / (1 << 20)
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": name}, Values: map[string]float64{"cpu_pct": pct, "rss_mib": rss}})
		guestCPU += pct
		guestRSS += rss
		guests++
	}
	if guests == 0 {
		return nil, errors.New("/metrics has no running guest with CPU and memory figures")
	}
	var pluginCPU, pluginRSS float64
	for _, m := range family(m1, "loco_plugin_memory_rss_bytes") {
		kind, name := label(m, "kind"), label(m, "plugin")
		pct, ok := cpu("loco_plugin_cpu_seconds_total", "plugin", name)
		if !ok {
			continue
		}
		rss := m.GetGauge().GetValue() / (1 << 20)
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"plugin": kind + "-" + name}, Values: map[string]float64{"cpu_pct": pct, "rss_mib": rss}})
		pluginCPU += pct
		pluginRSS += rss
	}
	locoCPU, _ := cpu("process_cpu_seconds_total", "")
	locoRSS, _ := value(m1, "process_resident_memory_bytes", "")
	rows = append(rows, sdk.BenchRow{Labels: map[string]string{"process": "loco"}, Values: map[string]float64{"cpu_pct": locoCPU, "rss_mib": locoRSS / (1 << 20)}})
	rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": "all"}, Values: map[string]float64{
		"guests_cpu_pct": guestCPU, "guests_rss_mib": guestRSS,
		"cpu_pct_per_guest": guestCPU / float64(guests), "rss_mib_per_guest": guestRSS / float64(guests),
		"plugins_cpu_pct": pluginCPU, "plugins_rss_mib": pluginRSS,
		"total_cpu_pct": guestCPU + pluginCPU + locoCPU,
	}})
	return rows, nil
}

func family(fams map[string]*dto.MetricFamily, name string) []*dto.Metric {
	if f := fams[name]; f != nil {
		return f.Metric
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// value is the counter or gauge of fam whose label key is labels[0] (any
// series when key is "").
func value(fams map[string]*dto.MetricFamily, fam, key string, labels ...string) (float64, bool) {
	for _, m := range family(fams, fam) {
		if key != "" && label(m, key) != labels[0] {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}
