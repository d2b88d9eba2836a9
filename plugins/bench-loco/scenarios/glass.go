package scenarios

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"

	"github.com/locolan/loco/sdk"
)

// MarkerProbe is probe.js: it defines window.bench in a page.
//
//go:embed probe.js
var MarkerProbe string

// glassMarker is a key that toggles a marker in the test guest and the
// region of the screen that shows it (inset from the block's edges, which
// lossy video blurs).
type glassMarker struct{ name, qcode, region string }

var glassMarkers = []glassMarker{
	{"small", "f9", "0.83, 0.83, 0.15, 0.15"},
	{"full", "f12", "0, 0, 1, 1"},
}

// runGlass puts the two ways loco shows a guest in a browser side by side
// on guest 0 of one cluster: WebRTC (the dashboard's focused tile, WHEP)
// and noVNC (the dashboard's RFB player on GET /api/instances/0/rfb,
// QEMU's own VNC encoding: what `stream "vnc"` serves). Both take keys
// through loco's input WebSocket, as the dashboard does, so only the
// picture's path differs. Per backend it reports glass-to-glass latency
// per marker, and for a still and a moving screen (F10, the test guest's
// animation) the host CPU of the guest's QEMU, the stream plugin and loco
// (% of one core) and what the viewer receives (kbit/s, fps).
func runGlass(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	trials, err := param(req, "trials", 30)
	if err != nil {
		return nil, err
	}
	idle, err := param(req, "idle_trials", 3)
	if err != nil {
		return nil, err
	}
	window, err := param(req, "window", 10)
	if err != nil {
		return nil, err
	}
	chromium := req.Params["chromium"]
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		return nil, fmt.Errorf("glass-to-glass needs a browser: %w (Debian package chromium, or --param chromium=PATH)", err)
	}
	if _, err := c.lan(ctx); err == nil {
		if err := waitReachable(ctx, c, req, progress); err != nil {
			return nil, err
		}
	}
	in, err := c.instances(ctx)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("the cluster has no guests")
	}
	guest := in[0].Name
	var desc struct {
		Plugin    string `json:"plugin"`
		Endpoints []struct {
			Protocol string `json:"protocol"`
		} `json:"endpoints"`
	}
	if err := c.getJSON(ctx, "/api/instances/0/stream", &desc); err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, e := range desc.Endpoints {
		has[e.Protocol] = true
	}
	if !has[sdk.ProtocolWHEP] || !has[sdk.ProtocolRFB] {
		return nil, fmt.Errorf("glass-to-glass compares WebRTC and noVNC on one guest: stream plugin %q serves %v for guest 0, and both whep and rfb are needed (stream \"webrtc\" serves both)", desc.Plugin, desc.Endpoints)
	}

	b, stop, err := startBrowser(ctx, chromium)
	if err != nil {
		return nil, err
	}
	defer stop()
	progress(0, "opening the dashboard")
	if err := chromedp.Do(b, chromedp.Navigate(c.base+"/?token="+c.token)); err != nil {
		return nil, fmt.Errorf("opening the dashboard: %w", err)
	}
	if err := pageWait(b, "guest 0's tile live", `(() => { const t = window.loco && loco.tiles.get(0); return !!t && t.streamState === 'live'; })()`, 2*time.Minute); err != nil {
		return nil, err
	}
	// A real click: a tile gets focus (and the full stream) from the mouse.
	rect, err := pageEval[struct{ X, Y float64 }](b, `(() => { const r = document.querySelector('.tile[data-index="0"]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
	if err != nil {
		return nil, err
	}
	if err := chromedp.Do(b, chromedp.MouseClickXY(rect.X, rect.Y)); err != nil {
		return nil, fmt.Errorf("clicking guest 0's tile: %w", err)
	}
	if err := pageWait(b, "the input WebSocket", `loco.focused && loco.focused.inputState === 'input ready'`, 30*time.Second); err != nil {
		return nil, err
	}
	if err := pageWait(b, "the full-size stream in the focused tile", `loco.focused.shown === 'full' && loco.focused.video.videoWidth > 0`, 30*time.Second); err != nil {
		return nil, err
	}
	if _, err := pageEval[bool](b, MarkerProbe+`; bench.watchVideo(loco.focused.video); true`); err != nil {
		return nil, err
	}
	send := `(down) => loco.focused.input.send({ key: { qcode: '%s', down } })`
	total := 2 * (len(glassMarkers)*int(trials+idle) + 2)
	done := 0
	step := func(msg string) { done++; progress(float64(done)/float64(total), msg) }

	var rows []sdk.BenchRow
	backend := func(name, counters string) error {
		for _, m := range glassMarkers {
			r, err := markerTrials(b, name, m, fmt.Sprintf(send, m.qcode), int(trials), int(idle), step)
			if err != nil {
				return err
			}
			r.Labels["guest"] = guest
			rows = append(rows, r)
		}
		for _, moving := range []bool{false, true} {
			screen := "static"
			if moving {
				screen = "moving"
				if err := c.key(ctx, "f10"); err != nil {
					return err
				}
				time.Sleep(2 * time.Second)
			}
			v, err := measureViewer(ctx, c, b, guest, counters, window)
			if moving {
				if kerr := c.key(ctx, "f10"); err == nil {
					err = kerr
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				return fmt.Errorf("%s, %s screen: %w", name, screen, err)
			}
			rows = append(rows, sdk.BenchRow{Labels: map[string]string{"backend": name, "screen": screen, "guest": guest}, Values: v})
			step(fmt.Sprintf("%s %s: host %.1f%% of a core, %.0f kbit/s", name, screen, v["host_cpu_pct"], v["viewer_kbit_s"]))
		}
		return nil
	}
	// What the dashboard's WHEP players received: every tile's peer
	// connections (thumbnails of other guests included, if any), frames
	// of the focused tile's full stream.
	webrtcCounters := `(async () => {
  let bytes = 0, frames = 0;
  for (const t of loco.tiles.values()) for (const s of [t.thumb, t.full]) {
    if (!s || !s.pc) continue;
    (await s.pc.getStats()).forEach((x) => {
      if (x.type === 'transport') bytes += x.bytesReceived || 0;
      if (x.type === 'inbound-rtp' && x.kind === 'video' && s === loco.focused.full) frames += x.framesDecoded || 0;
    });
  }
  return { Bytes: bytes, Frames: frames }; })()`
	if err := backend("webrtc", webrtcCounters); err != nil {
		return nil, err
	}

	// noVNC: the dashboard's WHEP players stop (their tiles and focus,
	// with the input WebSocket, stay), and the dashboard's own RFB player
	// draws guest 0 into the page.
	progress(float64(done)/float64(total), "switching to noVNC")
	if _, err := pageEval[bool](b, fmt.Sprintf(`(async () => {
  for (const t of loco.tiles.values()) for (const s of [t.thumb, t.full]) if (s) s.stop();
  const { RfbStream } = await import('/ui/rfb.js');
  const div = document.createElement('div'); div.style.width = '800px'; div.style.height = '600px';
  document.body.append(div);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  window.benchRfb = new RfbStream(proto + '//' + location.host + '/api/instances/0/rfb?token=' + encodeURIComponent(%q), div,
    { state: (t) => { window.benchRfbState = t; }, stats: () => {} });
  benchRfb.start();
  return true; })()`, c.token)); err != nil {
		return nil, err
	}
	if err := pageWait(b, "noVNC drawing guest 0", `window.benchRfbState === 'live' && !!benchRfb.canvas && benchRfb.canvas.width > 0`, 30*time.Second); err != nil {
		return nil, err
	}
	if _, err := pageEval[bool](b, MarkerProbe+`; bench.watchCanvas(benchRfb.canvas); true`); err != nil {
		return nil, err
	}
	if err := backend("vnc", `({ Bytes: benchRfb.bytes, Frames: benchRfb.frames })`); err != nil {
		return nil, err
	}
	return rows, nil
}

// markerTrials runs the trials of one marker: quick ones 0.3-0.7 s apart,
// then idle ones each after 5 s of unchanged screen, and leaves the
// marker off.
func markerTrials(b context.Context, backend string, m glassMarker, send string, trials, idle int, step func(string)) (sdk.BenchRow, error) {
	if _, err := pageEval[bool](b, fmt.Sprintf(`bench.watch(%s)`, m.region)); err != nil {
		return sdk.BenchRow{}, err
	}
	if err := pageWait(b, "frames seen by the probe", `bench.state() !== null`, 20*time.Second); err != nil {
		return sdk.BenchRow{}, err
	}
	trial := func() (float64, error) {
		v, err := pageEval[float64](b, fmt.Sprintf(`bench.trial(%s)`, send))
		if err != nil {
			return 0, fmt.Errorf("%s, marker %s (key %s): %w (the test guest draws its markers on F9 and F12; another guest shows nothing)", backend, m.name, m.qcode, err)
		}
		return v, nil
	}
	var quick, slow []float64
	for i := range trials {
		v, err := trial()
		if err != nil {
			return sdk.BenchRow{}, err
		}
		quick = append(quick, v)
		step(fmt.Sprintf("%s, %s marker: trial %d/%d %.0f ms", backend, m.name, i+1, trials, v))
		time.Sleep(time.Duration(300+(i*37)%400) * time.Millisecond)
	}
	for i := range idle {
		time.Sleep(5 * time.Second)
		v, err := trial()
		if err != nil {
			return sdk.BenchRow{}, err
		}
		slow = append(slow, v)
		step(fmt.Sprintf("%s, %s marker: after 5 s idle %d/%d %.0f ms", backend, m.name, i+1, idle, v))
	}
	if on, err := pageEval[bool](b, `bench.state()`); err == nil && on {
		if _, err := trial(); err != nil {
			return sdk.BenchRow{}, err
		}
	}
	v := map[string]float64{"trials": float64(len(quick))}
	summary(v, "glass", "ms", quick)
	summary(v, "glass_idle", "ms", slow)
	return sdk.BenchRow{Labels: map[string]string{"backend": backend, "marker": m.name}, Values: v,
		Samples: map[string][]float64{"glass_ms": quick}}, nil
}

// measureViewer samples /metrics and the viewer's counters (a JS
// expression giving {Bytes, Frames}) over window seconds.
func measureViewer(ctx context.Context, c *client, b context.Context, guest, counters string, window float64) (map[string]float64, error) {
	type cnt struct{ Bytes, Frames float64 }
	m0, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	v0, err := pageEval[cnt](b, counters)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Duration(window * float64(time.Second))):
	}
	m1, err := c.metrics(ctx)
	if err != nil {
		return nil, err
	}
	v1, err := pageEval[cnt](b, counters)
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	pct := func(a, b float64) float64 { return 100 * (b - a) / secs }
	g0, ok0 := value(m0, "loco_guest_cpu_seconds_total", "guest", guest)
	g1, ok1 := value(m1, "loco_guest_cpu_seconds_total", "guest", guest)
	if !ok0 || !ok1 {
		return nil, fmt.Errorf("/metrics has no CPU figure for guest %s", guest)
	}
	s0, s1 := streamCPU(m0), streamCPU(m1)
	l0, _ := value(m0, "process_cpu_seconds_total", "")
	l1, _ := value(m1, "process_cpu_seconds_total", "")
	out := map[string]float64{
		"guest_cpu_pct":         pct(g0, g1),
		"stream_plugin_cpu_pct": pct(s0, s1),
		"loco_cpu_pct":          pct(l0, l1),
		"viewer_kbit_s":         8 * (v1.Bytes - v0.Bytes) / secs / 1000,
		"viewer_fps":            (v1.Frames - v0.Frames) / secs,
	}
	out["host_cpu_pct"] = out["guest_cpu_pct"] + out["stream_plugin_cpu_pct"] + out["loco_cpu_pct"]
	return out, nil
}

// streamCPU is the stream plugin's CPU seconds.
func streamCPU(fams map[string]*dto.MetricFamily) float64 {
	var s float64
	for _, m := range family(fams, "loco_plugin_cpu_seconds_total") {
		if label(m, "kind") == sdk.KindStream {
			s += m.GetCounter().GetValue()
		}
	}
	return s
}

// key presses and releases a key on guest 0 through the API.
func (c *client) key(ctx context.Context, qcode string) error {
	_, err := c.do(ctx, "POST", "/api/instances/0/input",
		fmt.Sprintf(`{"events":[{"key":{"qcode":%q,"down":true}},{"key":{"qcode":%q,"down":false}}]}`, qcode, qcode))
	return err
}

// startBrowser starts headless Chromium for the scenario.
func startBrowser(ctx context.Context, path string) (context.Context, func(), error) {
	dir, err := os.MkdirTemp("", "loco-bench-chromium-")
	if err != nil {
		return nil, nil, err
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0), // Chromium refuses its sandbox as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1600, 1000),
	)
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	stop := func() { cancel(); cancelAlloc(); os.RemoveAll(dir) }
	if err := chromedp.Do(bctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return bctx, stop, nil
}

func pageEval[T any](ctx context.Context, expr string) (T, error) {
	return pageEvalFor[T](ctx, expr, 30*time.Second)
}

func pageEvalFor[T any](ctx context.Context, expr string, timeout time.Duration) (T, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		var zero T
		return zero, fmt.Errorf("in the page: %s: %w", firstLine(expr), err)
	}
	return v, nil
}

func pageWait(ctx context.Context, what, expr string, timeout time.Duration) error {
	return waitFor(ctx, what, timeout, 250*time.Millisecond, func() (bool, error) {
		return pageEval[bool](ctx, expr)
	})
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " ..."
		}
	}
	if len(s) > 80 {
		return s[:80] + " ..."
	}
	return s
}
