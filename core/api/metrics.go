package api

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/locolan/loco/core/supervise"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture loco runs on.
const clockTicks = 100

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
		if cpu, _, err := procUsage(g.PID); err == nil && g.State == supervise.Running {
			fmt.Fprintf(&b, "loco_guest_cpu_seconds_total{guest=%q} %.2f\n", g.Name, cpu)
		}
	}
	help("loco_guest_memory_rss_bytes", "gauge", "Resident memory of the guest's QEMU process.")
	for _, g := range guests {
		if _, rss, err := procUsage(g.PID); err == nil && g.State == supervise.Running {
			fmt.Fprintf(&b, "loco_guest_memory_rss_bytes{guest=%q} %d\n", g.Name, rss)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}

// procUsage reads a process's CPU seconds and resident bytes from /proc.
func procUsage(pid int) (cpuSeconds float64, rssBytes int64, err error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("no process")
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// After the name: state is f[0], utime f[11], stime f[12], rss (pages) f[21].
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return (utime + stime) / clockTicks, rss * int64(os.Getpagesize()), nil
}
