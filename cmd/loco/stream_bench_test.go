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
)

// markerProbe runs in the page: it watches a source (a <video> through
// requestVideoFrameCallback, or a canvas every animation frame) and tells
// when its mean brightness crosses half scale: the test guest's marker
// (F12) turns the whole 800x600 console from dark to light and back.
const markerProbe = `
window.bench = (() => {
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d', { willReadFrequently: true });
  const luma = (src) => {
    g.drawImage(src, 0, 0, 32, 24);
    const d = g.getImageData(0, 0, 32, 24).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
    return s / (d.length / 4) / 3;
  };
  let last = { light: null, at: 0 };
  let waiters = [];
  const seen = (light, at) => {
    last = { light, at };
    waiters = waiters.filter((w) => { if (w.light === light) { w.resolve(at); return false; } return true; });
  };
  return {
    watchVideo(video) {
      const cb = (now, meta) => { seen(luma(video) > 128, meta.expectedDisplayTime || now); video.requestVideoFrameCallback(cb); };
      video.requestVideoFrameCallback(cb);
    },
    watchCanvas(canvas) {
      const cb = (now) => { seen(luma(canvas) > 128, now); requestAnimationFrame(cb); };
      requestAnimationFrame(cb);
    },
    state() { return last.light; },
    // trial sends the marker key with send(down) and resolves with the time
    // from sending it until a frame with the marker toggled is shown.
    trial(send) {
      const want = !last.light;
      return new Promise((resolve, reject) => {
        const t0 = performance.now();
        waiters.push({ light: want, resolve: (at) => resolve(at - t0) });
        send(true); send(false);
        setTimeout(() => reject(new Error('no marker within 5 s')), 5000);
      });
    },
  };
})();`

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
		e := &e2e{t: b, bin: filepath.Join(testenv.Binaries(b), "loco"), guest: testenv.TestGuest(b), dir: dir, stateDir: filepath.Join(dir, "state")}
		spec, withInput, _ := e.streamSpec("bench", 1, "")
		if !withInput {
			b.Skip("needs the input plugin (plugins/input-qmp)")
		}
		b.Cleanup(func() { e.loco("stop", "--grace", "0s", "--destroy", spec) })
		e.mustLoco("run", "--detach", spec)
		e.waitReady("bench", 0, 1)
		base, tok, err := cluster.APIEndpoint(filepath.Join(e.stateDir, "bench"))
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
		pageEval[bool](b, ctx, markerProbe+`; bench.watchVideo(loco.focused.video); true`)
		pageWait(b, ctx, "frames seen by the probe", `bench.state() !== null`, 10*time.Second)
		sendWebRTC := `(down) => loco.focused.input.send({ key: { qcode: 'f12', down } })`
		rtc, rtcIdle := runTrials(b, ctx, sendWebRTC, trials, idleTrials)

		// noVNC on the same guest: websockify serves noVNC's files and
		// bridges its WebSocket to the guest's VNC unix socket.
		port := freePort(b)
		ws := exec.Command("websockify", "--web", "/usr/share/novnc", "--unix-target", filepath.Join(e.guestDir("bench", 0), "vnc.sock"),
			fmt.Sprintf("127.0.0.1:%d", port))
		wsLog, _ := os.Create(filepath.Join(e.dir, "websockify.log"))
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
		pageWait(b, tab, "noVNC frames seen by the probe", `bench.state() !== null`, 20*time.Second)
		// XK_F12 is 0xffc9.
		sendVNC := `(down) => rfb.sendKey(0xffc9, 'F12', down)`
		vnc, vncIdle := runTrials(b, tab, sendVNC, trials, idleTrials)
		chromedp.Cancel(tab)

		b.Logf("WebRTC glass-to-glass over %d trials: p50 %.0f ms, p95 %.0f ms; first change after 5 s idle (%d): p50 %.0f ms, max %.0f ms",
			len(rtc), percentile(rtc, 50), percentile(rtc, 95), len(rtcIdle), percentile(rtcIdle, 50), percentile(rtcIdle, 100))
		b.Logf("noVNC glass-to-glass over %d trials: p50 %.0f ms, p95 %.0f ms; first change after 5 s idle (%d): p50 %.0f ms, max %.0f ms",
			len(vnc), percentile(vnc, 50), percentile(vnc, 95), len(vncIdle), percentile(vncIdle, 50), percentile(vncIdle, 100))
		b.ReportMetric(percentile(rtc, 50), "webrtc-p50-ms")
		b.ReportMetric(percentile(rtc, 95), "webrtc-p95-ms")
		b.ReportMetric(percentile(rtcIdle, 50), "webrtc-idle-p50-ms")
		b.ReportMetric(percentile(vnc, 50), "novnc-p50-ms")
		b.ReportMetric(percentile(vnc, 95), "novnc-p95-ms")
		b.ReportMetric(percentile(vncIdle, 50), "novnc-idle-p50-ms")

		// CPU and bitrate of one stream, static and moving (F10 toggles
		// the test guest's full-screen text animation).
		st := e.status(spec)
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
		e.loco("stop", "--grace", "0s", "--destroy", spec)
	}
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

// measureStream samples the plugin's CPU time and the encoder's stats for d.
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
		var st []streamStat
		apiGet(b, base, tok, "/api/streams", &st)
		kbps += st[0].Bitrate / 1000
		fps += st[0].FPS
		enc += st[0].EncodeMs
		n++
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
