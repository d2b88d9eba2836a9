package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/locolan/loco/sdk"
)

// pluginCollector asks every plugin for its series at scrape time (the
// optional Metrics RPC) and adds the plugin's name as the `plugin` label.
// It is unchecked (Describe sends nothing): which families a plugin has is
// known only when it answers.
type pluginCollector struct {
	b   Backend
	log *slog.Logger
}

// pluginScrapeTimeout bounds one plugin's answer, so a hung plugin costs a
// scrape its own series and not Prometheus's scrape timeout (10 s default).
const pluginScrapeTimeout = 3 * time.Second

func (pluginCollector) Describe(chan<- *prometheus.Desc) {}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, p := range c.b.Plugins() {
		cl := p.Metrics
		if cl == nil {
			continue
		}
		kind, name := p.Kind, p.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), pluginScrapeTimeout)
			defer cancel()
			fams, err := cl.Metrics(ctx)
			if errors.Is(err, sdk.ErrUnsupported) {
				return
			}
			if err != nil {
				c.log.Warn("metrics: plugin did not answer", "kind", kind, "plugin", name, "err", err)
				return
			}
			for _, f := range fams {
				if err := emitFamily(ch, name, f); err != nil {
					c.log.Warn("metrics: dropping a plugin's family", "kind", kind, "plugin", name, "err", err)
				}
			}
		}()
	}
	wg.Wait()
}

// emitFamily turns one plugin family into const metrics; a family that
// Prometheus would refuse is dropped whole, with the reason.
func emitFamily(ch chan<- prometheus.Metric, plugin string, f sdk.MetricFamily) error {
	if err := f.Validate(); err != nil {
		return err
	}
	desc := prometheus.NewDesc(f.Name, f.Help, append(append([]string{}, f.Labels...), "plugin"), nil)
	var out []prometheus.Metric
	for _, s := range f.Samples {
		lv := append(append([]string{}, s.LabelValues...), plugin)
		var m prometheus.Metric
		var err error
		switch f.Type {
		case sdk.Counter:
			m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.Value, lv...)
		case sdk.Gauge:
			m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.Value, lv...)
		case sdk.Histogram:
			buckets := make(map[float64]uint64, len(f.Buckets))
			for i, le := range f.Buckets {
				buckets[le] = s.BucketCounts[i]
			}
			m, err = prometheus.NewConstHistogram(desc, s.Count, s.Sum, buckets, lv...)
		}
		if err != nil {
			return fmt.Errorf("metric %s: %w", f.Name, err)
		}
		out = append(out, m)
	}
	for _, m := range out {
		ch <- m
	}
	return nil
}
