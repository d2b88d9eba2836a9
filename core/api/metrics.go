package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/internal/proc"
)

// The guest series predate client_golang here; their names and labels are
// part of the API (docs/api.md) and stay as they were.
var (
	descGuestUp       = prometheus.NewDesc("loco_guest_up", "1 when the guest's QEMU process runs.", []string{"guest"}, nil)
	descGuestRestarts = prometheus.NewDesc("loco_guest_restarts_total", "Restarts of the guest by the supervisor.", []string{"guest"}, nil)
	descGuestUptime   = prometheus.NewDesc("loco_guest_uptime_seconds", "Seconds since the guest's QEMU started.", []string{"guest"}, nil)
	descGuestCPU      = prometheus.NewDesc("loco_guest_cpu_seconds_total", "CPU time used by the guest's QEMU process (user+system).", []string{"guest"}, nil)
	descGuestRSS      = prometheus.NewDesc("loco_guest_memory_rss_bytes", "Resident memory of the guest's QEMU process.", []string{"guest"}, nil)
	descPluginUp      = prometheus.NewDesc("loco_plugin_up", "1 while the plugin's process answers.", []string{"kind", "plugin"}, nil)
	descPluginRestart = prometheus.NewDesc("loco_plugin_restarts_total", "Restarts of the plugin by the core after it crashed or stopped answering.", []string{"kind", "plugin"}, nil)
	descPluginCPU     = prometheus.NewDesc("loco_plugin_cpu_seconds_total", "CPU time used by the plugin's process (user+system).", []string{"kind", "plugin"}, nil)
	descPluginRSS     = prometheus.NewDesc("loco_plugin_memory_rss_bytes", "Resident memory of the plugin's process.", []string{"kind", "plugin"}, nil)
)

// coreCollector reads the cluster's live state at scrape time, so a series
// is never staler than the scrape and nothing runs between scrapes.
type coreCollector struct{ b Backend }

func (c coreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGuestUp, descGuestRestarts, descGuestUptime, descGuestCPU, descGuestRSS,
		descPluginUp, descPluginRestart, descPluginCPU, descPluginRSS} {
		ch <- d
	}
}

func (c coreCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.b.Guests() {
		running := g.State == supervise.Running
		up := 0.0
		if running {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descGuestUp, prometheus.GaugeValue, up, g.Name)
		ch <- prometheus.MustNewConstMetric(descGuestRestarts, prometheus.CounterValue, float64(g.Restarts), g.Name)
		if !running {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descGuestUptime, prometheus.GaugeValue, time.Since(g.Started).Seconds(), g.Name)
		if st, err := proc.Read(g.PID); err == nil {
			ch <- prometheus.MustNewConstMetric(descGuestCPU, prometheus.CounterValue, st.CPUSeconds(), g.Name)
			ch <- prometheus.MustNewConstMetric(descGuestRSS, prometheus.GaugeValue, float64(st.RSSBytes()), g.Name)
		}
	}
	for _, p := range c.b.Plugins() {
		kind, name := p.Kind, p.Name
		ch <- prometheus.MustNewConstMetric(descPluginRestart, prometheus.CounterValue, float64(p.Restarts), kind, name)
		st, err := proc.Read(p.PID)
		up := 0.0
		if err == nil && st.State != "Z" {
			up = 1
			ch <- prometheus.MustNewConstMetric(descPluginCPU, prometheus.CounterValue, st.CPUSeconds(), kind, name)
			ch <- prometheus.MustNewConstMetric(descPluginRSS, prometheus.GaugeValue, float64(st.RSSBytes()), kind, name)
		}
		ch <- prometheus.MustNewConstMetric(descPluginUp, prometheus.GaugeValue, up, kind, name)
	}
}

// newMetrics builds the server's registry: its own, not the global one, so
// two servers in one process (tests) do not share series.
func newMetrics(b Backend, log *slog.Logger) (*prometheus.Registry, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		coreCollector{b: b},
		pluginCollector{b: b, log: log},
	)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// One plugin's bad family must not cost the scrape every other series.
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          slogPromLogger{log},
		EnableOpenMetrics: true,
	})
	return reg, h
}

type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Warn("metrics", "problem", v) }
