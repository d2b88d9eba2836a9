package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/internal/proc"
)

// metrics writes the Prometheus text format by hand: a handful of gauges
// and counters do not warrant a client library.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	guests := s.b.Guests()
	var b strings.Builder
	help := func(name, typ, text string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ)
	}
	help("loco_guest_up", "gauge", "1 when the guest's QEMU process runs.")
	for _, g := range guests {
		up := 0
		if g.State == supervise.Running {
			up = 1
		}
		fmt.Fprintf(&b, "loco_guest_up{guest=%q} %d\n", g.Name, up)
	}
	help("loco_guest_restarts_total", "counter", "Restarts of the guest by the supervisor.")
	for _, g := range guests {
		fmt.Fprintf(&b, "loco_guest_restarts_total{guest=%q} %d\n", g.Name, g.Restarts)
	}
	help("loco_guest_uptime_seconds", "gauge", "Seconds since the guest's QEMU started.")
	for _, g := range guests {
		if g.State == supervise.Running {
			fmt.Fprintf(&b, "loco_guest_uptime_seconds{guest=%q} %.0f\n", g.Name, time.Since(g.Started).Seconds())
		}
	}
	help("loco_guest_cpu_seconds_total", "counter", "CPU time used by the guest's QEMU process (user+system).")
	for _, g := range guests {
		if st, err := proc.Read(g.PID); err == nil && g.State == supervise.Running {
			fmt.Fprintf(&b, "loco_guest_cpu_seconds_total{guest=%q} %.2f\n", g.Name, st.CPUSeconds())
		}
	}
	help("loco_guest_memory_rss_bytes", "gauge", "Resident memory of the guest's QEMU process.")
	for _, g := range guests {
		if st, err := proc.Read(g.PID); err == nil && g.State == supervise.Running {
			fmt.Fprintf(&b, "loco_guest_memory_rss_bytes{guest=%q} %d\n", g.Name, st.RSSBytes())
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}
