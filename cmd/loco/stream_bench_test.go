package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/internal/testenv/locorun"
	"github.com/locolan/loco/plugins/bench-loco/scenarios"
)

// markerProbe (plugins/bench-loco/scenarios/probe.js, shared with the
// glass-to-glass scenario of loco bench) watches a video or canvas and
// times the test guest's markers.
var markerProbe = scenarios.MarkerProbe

// A marker: the key that toggles it in the test guest and the region of
// the screen that shows it (inset from the block's edges, which lossy
// video blurs).
type marker struct {
	name, qcode string
	keysym      int // X keysym, for noVNC
	region      string
}

var markers = []marker{
	{"small (F9, 160x120 block)", "f9", 0xffc6, "0.83, 0.83, 0.15, 0.15"},
	{"full screen (F12, reverse video)", "f12", 0xffc9, "0, 0, 1, 1"},
}

type trialResult struct {
	quick, idle []float64
}

// runMarkers runs the trials of every marker through one path; send is a
// JavaScript function of (qcode, keysym, down).
func runMarkers(b *testing.B, c context.Context, path, send string, trials, idle int) []trialResult {
	var res []trialResult
	for _, m := range markers {
		pageEval[bool](b, c, fmt.Sprintf(`bench.watch(%s)`, m.region))
		pageWait(b, c, "frames seen by the probe", `bench.state() !== null`, 20*time.Second)
		quick, slow := runTrials(b, c, fmt.Sprintf(`(down) => (%s)('%s', %d, down)`, send, m.qcode, m.keysym), trials, idle)
		b.Logf("%s glass-to-glass, %s marker, over %d trials: p50 %.0f ms, p95 %.0f ms; first change after 5 s idle (%d): p50 %.0f ms, max %.0f ms",
			path, m.name, len(quick), percentile(quick, 50), percentile(quick, 95), len(slow), percentile(slow, 50), percentile(slow, 100))
		if recv := pageEval[[]float64](b, c, `bench.received()`); len(recv) > 0 {
			b.Logf("%s, %s marker: key press to the frame's last packet received, p50 %.0f ms, p95 %.0f ms (the rest is decode and display)",
				path, m.name, percentile(recv, 50), percentile(recv, 95))
		}
		if exp := pageEval[[]float64](b, c, `bench.expected()`); len(exp) > 0 {
			b.Logf("%s, %s marker: key press to the frame's expectedDisplayTime (how this benchmark timed WebRTC before 2026-12-01), p50 %.0f ms, p95 %.0f ms",
				path, m.name, percentile(exp, 50), percentile(exp, 95))
		}
		res = append(res, trialResult{quick, slow})
		// Leave the marker off, so the next path's trials start from a dark screen.
		if pageEval[bool](b, c, `bench.state()`) {
			pageEval[float64](b, c, fmt.Sprintf(`bench.trial((down) => (%s)('%s', %d, down))`, send, m.qcode, m.keysym))
		}
	}
	return res
}

func percentile(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

// BenchmarkGlassToGlass measures what a player feels, on one 800x600 test
// guest: the time from a key sent by the browser to the frame that shows
// the guest's reaction, through the stream plugin (WebRTC, the dashboard's
// own input WebSocket) and through noVNC (websockify to the same guest's
// VNC display) in the same run; plus the stream plugin's CPU and bitrate
// for a static and a moving screen. Run it on an idle machine:
//
//	go test -run '^$' -bench GlassToGlass -benchtime 1x -timeout 30m -v ./cmd/loco
func BenchmarkGlassToGlass(b *testing.B) {
	const trials, idleTrials = 50, 5
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := testenv.ShortTempDir(b)
		e := &e2e{&locorun.Harness{T: b, Bin: filepath.Join(testenv.Binaries(b), "loco"), Guest: testenv.TestGuest(b), Dir: dir, StateDir: filepath.Join(dir, "state")}}
		spec, withInput, _ := e.streamSpec("bench", 1, "")
		if !withInput {
			b.Skip("needs the input plugin (plugins/input-qmp)")
		}
		b.Cleanup(func() { e.Run("stop", "--grace", "0s", "--destroy", spec) })
		e.MustRun("run", "--detach", spec)
		e.WaitReady("bench", 0, 1)
		base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		ctx := startChromium(b)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
			b.Fatal(err)
		}
		pageWait(b, ctx, "a live tile", fmt.Sprintf(allLive, 1), 2*time.Minute)
		// A real click: unmuting a video without a user gesture pauses it.
		rect := pageEval[struct{ X, Y float64 }](b, ctx,
			`(() => { const r = document.querySelector('.tile[data-index="0"]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(rect.X, rect.Y)); err != nil {
			b.Fatal(err)
		}
		pageWait(b, ctx, "the input WebSocket", `loco.focused.inputState === 'input ready'`, 30*time.Second)
		pageWait(b, ctx, "the full-size stream in the focused tile", `loco.focused.shown === 'full' && loco.focused.video.videoWidth === 800`, 30*time.Second)
		pageEval[bool](b, ctx, markerProbe+`; bench.watchVideo(loco.focused.video); true`)
		sendWebRTC := `(qcode, keysym, down) => loco.focused.input.send({ key: { qcode, down } })`
		rx0 := pageEval[rxStats](b, ctx, receiverStats)
		rtc := runMarkers(b, ctx, "WebRTC", sendWebRTC, trials, idleTrials)
		rx := pageEval[rxStats](b, ctx, receiverStats).since(rx0)
		b.Logf("browser, per video frame over the trials: jitter buffer %.1f ms, decode %.1f ms, receive to render %.1f ms, %d frames, %d dropped; audio jitter buffer %.1f ms",
			rx.JitterMs, rx.DecodeMs, rx.ProcessingMs, rx.Frames, rx.Dropped, rx.AudioJitterMs)
		b.ReportMetric(rx.JitterMs, "browser-jitter-ms")

		// noVNC on the same guest: websockify serves noVNC's files and
		// bridges its WebSocket to the guest's VNC unix socket.
		port := freePort(b)
		ws := exec.Command("websockify", "--web", "/usr/share/novnc", "--unix-target", filepath.Join(e.GuestDir("bench", 0), "vnc.sock"),
			fmt.Sprintf("127.0.0.1:%d", port))
		wsLog, _ := os.Create(filepath.Join(e.Dir, "websockify.log"))
		ws.Stdout, ws.Stderr = wsLog, wsLog
		if err := ws.Start(); err != nil {
			b.Fatalf("websockify (Debian package websockify): %v", err)
		}
		defer func() { ws.Process.Kill(); ws.Wait() }()
		waitPort(b, port)
		tab := chromiumTab(b, ctx)
		if err := chromedp.Do(tab, chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/vnc_lite.html?autoconnect=false", port))); err != nil {
			b.Fatal(err)
		}
		pageEval[bool](b, tab, fmt.Sprintf(`(async () => {
  const { default: RFB } = await import('/core/rfb.js');
  document.body.replaceChildren();
  const div = document.createElement('div'); div.style.width = '800px'; div.style.height = '600px';
  document.body.append(div);
  window.rfb = new RFB(div, 'ws://127.0.0.1:%d/websockify', { shared: true });
  await new Promise((r) => rfb.addEventListener('connect', r));
  return true; })()`, port))
		pageEval[bool](b, tab, markerProbe+`; bench.watchCanvas(document.querySelector('canvas')); true`)
		sendVNC := `(qcode, keysym, down) => rfb.sendKey(keysym, qcode.toUpperCase(), down)`
		vnc := runMarkers(b, tab, "noVNC", sendVNC, trials, idleTrials)
		chromedp.Cancel(tab)

		for i, unit := range []string{"small", "full"} {
			b.ReportMetric(percentile(rtc[i].quick, 50), "webrtc-"+unit+"-p50-ms")
			b.ReportMetric(percentile(rtc[i].quick, 95), "webrtc-"+unit+"-p95-ms")
			b.ReportMetric(percentile(rtc[i].idle, 50), "webrtc-"+unit+"-idle-p50-ms")
			b.ReportMetric(percentile(vnc[i].quick, 50), "novnc-"+unit+"-p50-ms")
			b.ReportMetric(percentile(vnc[i].quick, 95), "novnc-"+unit+"-p95-ms")
			b.ReportMetric(percentile(vnc[i].idle, 50), "novnc-"+unit+"-idle-p50-ms")
		}

		// CPU and bitrate of one stream, static and moving (F10 toggles
		// the test guest's full-screen text animation).
		st := e.Status(spec)
		pid := childPID(b, st.LocoPID, "loco-plugin-stream-webrtc")
		static := measureStream(b, base, tok, pid, 10*time.Second)
		pageEval[bool](b, ctx, `(loco.focused.input.send({key:{qcode:'f10',down:true}}), loco.focused.input.send({key:{qcode:'f10',down:false}}), true)`)
		time.Sleep(2 * time.Second)
		moving := measureStream(b, base, tok, pid, 10*time.Second)
		pageEval[bool](b, ctx, `(loco.focused.input.send({key:{qcode:'f10',down:true}}), loco.focused.input.send({key:{qcode:'f10',down:false}}), true)`)
		fps := pageEval[[]tileFPS](b, ctx, decodedFPS+"(3000)")
		b.Logf("static 800x600: plugin CPU %.1f%% of a core, %.0f kbit/s, encoder %.1f fps, %.2f ms/frame", static.cpu, static.kbps, static.fps, static.encodeMs)
		b.Logf("moving 800x600: plugin CPU %.1f%% of a core, %.0f kbit/s, encoder %.1f fps, %.2f ms/frame", moving.cpu, moving.kbps, moving.fps, moving.encodeMs)
		b.Logf("browser decoded after the motion: %+v", fps)
		b.ReportMetric(static.cpu, "static-cpu-%")
		b.ReportMetric(static.kbps, "static-kbit/s")
		b.ReportMetric(moving.cpu, "moving-cpu-%")
		b.ReportMetric(moving.kbps, "moving-kbit/s")
		e.Run("stop", "--grace", "0s", "--destroy", spec)
	}
}

// receiverStats sums the focused tile's receive-side counters: how long
// video frames waited in the jitter buffer, took to decode, and took from
// their first packet to the renderer, per frame.
const receiverStats = `(async () => {
  const r = { Frames: 0, Dropped: 0, JitterS: 0, Emitted: 0, DecodeS: 0, ProcessingS: 0, AudioJitterS: 0, AudioEmitted: 0 };
  (await loco.focused.stream.pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') {
      r.Frames = s.framesDecoded || 0; r.Dropped = s.framesDropped || 0;
      r.JitterS = s.jitterBufferDelay || 0; r.Emitted = s.jitterBufferEmittedCount || 0;
      r.DecodeS = s.totalDecodeTime || 0; r.ProcessingS = s.totalProcessingDelay || 0;
    } else {
      r.AudioJitterS = s.jitterBufferDelay || 0; r.AudioEmitted = s.jitterBufferEmittedCount || 0;
    }
  });
  return r; })()`

type rxStats struct {
	Frames, Dropped, Emitted, AudioEmitted          int
	JitterS, DecodeS, ProcessingS, AudioJitterS     float64
	JitterMs, DecodeMs, ProcessingMs, AudioJitterMs float64
}

// since turns two snapshots into per-frame averages over the time between.
func (r rxStats) since(r0 rxStats) rxStats {
	d := rxStats{Frames: r.Frames - r0.Frames, Dropped: r.Dropped - r0.Dropped}
	per := func(total, total0 float64, n, n0 int) float64 {
		if n == n0 {
			return 0
		}
		return 1000 * (total - total0) / float64(n-n0)
	}
	d.JitterMs = per(r.JitterS, r0.JitterS, r.Emitted, r0.Emitted)
	d.DecodeMs = per(r.DecodeS, r0.DecodeS, r.Frames, r0.Frames)
	d.ProcessingMs = per(r.ProcessingS, r0.ProcessingS, r.Frames, r0.Frames)
	d.AudioJitterMs = per(r.AudioJitterS, r0.AudioJitterS, r.AudioEmitted, r0.AudioEmitted)
	return d
}

// runTrials runs n marker trials 0.3-0.7 s apart, then idle trials each
// after 5 s of unchanged screen.
func runTrials(b *testing.B, c context.Context, send string, n, idle int) (quick, slow []float64) {
	for i := 0; i < n; i++ {
		quick = append(quick, pageEval[float64](b, c, fmt.Sprintf(`bench.trial(%s)`, send)))
		time.Sleep(time.Duration(300+(i*37)%400) * time.Millisecond)
	}
	for i := 0; i < idle; i++ {
		time.Sleep(5 * time.Second)
		slow = append(slow, pageEval[float64](b, c, fmt.Sprintf(`bench.trial(%s)`, send)))
	}
	return quick, slow
}

type streamSample struct{ cpu, kbps, fps, encodeMs float64 }

// measureStream samples the plugin's CPU time and guest 0's full-size
// encoder's stats for d.
func measureStream(b *testing.B, base, tok string, pid int, d time.Duration) streamSample {
	st0, err := proc.Read(pid)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var kbps, fps, enc float64
	n := 0
	for time.Since(start) < d {
		time.Sleep(time.Second)
		var all []streamStat
		apiGet(b, base, tok, "/api/streams", &all)
		for _, st := range all {
			if st.Index == 0 && st.Variant == "full" {
				kbps += st.Bitrate / 1000
				fps += st.FPS
				enc += st.EncodeMs
				n++
			}
		}
	}
	st1, _ := proc.Read(pid)
	return streamSample{cpu: 100 * (st1.CPUSeconds() - st0.CPUSeconds()) / time.Since(start).Seconds(), kbps: kbps / float64(n), fps: fps / float64(n), encodeMs: enc / float64(n)}
}

func freePort(b testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(b testing.TB, port int) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
	}
	b.Fatalf("nothing listens on port %d", port)
}
