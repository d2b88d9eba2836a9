package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"

	"github.com/locolan/loco/sdk"
)

// runDensity measures what N guests cost, watched on the dashboard when
// the cluster streams: per tile the frames the browser shows per second,
// per guest, plugin and loco the CPU and memory. Guests still booting are
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
	moving, err := screenParam(req)
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
	in, err := c.instances(ctx)
	if err != nil {
		return nil, err
	}
	page, stop, err := openDashboard(ctx, c, req, len(in), progress)
	if err != nil {
		return nil, err
	}
	defer stop()
	if moving {
		// F10: the test guest's whole console redrawn 25 times a second.
		if err := pressAll(ctx, c, in, "f10"); err != nil {
			return nil, err
		}
		defer pressAll(context.WithoutCancel(ctx), c, in, "f10")
		time.Sleep(3 * time.Second)
	}
	m0, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	w := time.Duration(window * float64(time.Second))
	var fps []tileFPS
	fpsErr := make(chan error, 1)
	if page != nil {
		// The page measures over the same window, in parallel.
		go func() {
			var err error
			fps, err = pageEvalFor[[]tileFPS](page, fmt.Sprintf("%s(%d)", DecodedFPS, w.Milliseconds()), w+30*time.Second)
			fpsErr <- err
		}()
	} else {
		fpsErr <- nil
	}
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
	if err := <-fpsErr; err != nil {
		return nil, fmt.Errorf("the dashboard's tiles: %w", err)
	}
	return densityRows(m0, m1, secs, fps, page != nil, moving)
}

// densityRows are the figures of two scrapes of /metrics secs apart, and
// the tiles' frame rates when the dashboard was watched.
func densityRows(m0, m1 map[string]*dto.MetricFamily, secs float64, fps []tileFPS, watched, moving bool) ([]sdk.BenchRow, error) {
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
	sum := map[string]float64{
		"guests_cpu_pct": guestCPU, "guests_rss_mib": guestRSS,
		"cpu_pct_per_guest": guestCPU / float64(guests), "rss_mib_per_guest": guestRSS / float64(guests),
		"plugins_cpu_pct": pluginCPU, "plugins_rss_mib": pluginRSS,
		"total_cpu_pct": guestCPU + pluginCPU + locoCPU,
	}
	screen := map[bool]string{false: "still", true: "moving"}[moving]
	if watched {
		var tiles []float64
		for _, f := range fps {
			rows = append(rows, sdk.BenchRow{Labels: map[string]string{"tile": f.Name, "screen": screen}, Values: map[string]float64{"tile_fps": f.FPS}})
			tiles = append(tiles, f.FPS)
		}
		summary(sum, "tile", "fps", tiles)
		if len(tiles) > 0 {
			sum["tile_min_fps"] = slices.Min(tiles)
		}
	}
	rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": "all", "screen": screen}, Values: sum})
	return rows, nil
}

func screenParam(req sdk.RunRequest) (moving bool, err error) {
	switch sc := req.Params["screen"]; sc {
	case "", "still":
		return false, nil
	case "moving":
		return true, nil
	default:
		return false, fmt.Errorf("--param screen=%q: still or moving: %w", sc, sdk.ErrInvalid)
	}
}

type tileFPS struct {
	Name string  `json:"name"`
	FPS  float64 `json:"fps"`
}

// openDashboard opens the dashboard in headless Chromium with every
// guest's tile live, when the cluster has a stream plugin (nil without
// one: density then measures the guests and plugins only).
func openDashboard(ctx context.Context, c *client, req sdk.RunRequest, guests int, progress func(float64, string) error) (context.Context, func(), error) {
	if _, err := c.do(ctx, "GET", "/api/instances/0/stream", ""); isStatus(err, 404) {
		progress(0, "no stream plugin: no dashboard")
		return nil, func() {}, nil
	} else if err != nil {
		return nil, nil, err
	}
	chromium := req.Params["chromium"]
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		return nil, nil, fmt.Errorf("density watches the dashboard's tiles in a browser: %w (Debian package chromium, or --param chromium=PATH)", err)
	}
	b, stop, err := startBrowser(ctx, chromium)
	if err != nil {
		return nil, nil, err
	}
	progress(0, "opening the dashboard")
	if err := chromedp.Do(b, chromedp.Navigate(c.base+"/?token="+c.token)); err != nil {
		stop()
		return nil, nil, fmt.Errorf("opening the dashboard: %w", err)
	}
	if err := pageWait(b, fmt.Sprintf("%d live tiles", guests), fmt.Sprintf(AllLive, guests), 3*time.Minute); err != nil {
		stop()
		return nil, nil, err
	}
	// A tile's first seconds are its key frame and the encoder's start.
	time.Sleep(3 * time.Second)
	return b, stop, nil
}

// pressAll presses a key on every guest.
func pressAll(ctx context.Context, c *client, in []instance, qcode string) error {
	for _, g := range in {
		if _, err := c.do(ctx, "POST", fmt.Sprintf("/api/instances/%d/input", g.Index),
			fmt.Sprintf(`{"events":[{"key":%q}]}`, qcode)); err != nil {
			return err
		}
	}
	return nil
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
