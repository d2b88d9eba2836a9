package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/internal/testenv/locorun"
)

// BenchmarkGrid is the 3x3 grid end to end: nine test guests (800x600
// consoles, TCG), the dashboard in headless Chromium with one tile focused
// (full) and eight thumbnails, first with every screen still but for the
// status screen's clock, then with every guest's console moving (F10: the
// whole console redrawn 25 times a second). It reports the stream
// plugin's CPU (% of one core), every tile's decoded frame rate, and how
// long a click takes to bring the focused tile its full-size stream.
//
//	go test -run '^$' -bench Grid -benchtime 1x -timeout 30m -v ./cmd/loco
func BenchmarkGrid(b *testing.B) {
	const n = 9
	for i := 0; i < b.N; i++ {
		dir := testenv.ShortTempDir(b)
		e := &e2e{&locorun.Harness{T: b, Bin: filepath.Join(testenv.Binaries(b), "loco"), Guest: testenv.TestGuest(b), Dir: dir, StateDir: filepath.Join(dir, "state")}}
		spec, withInput, _ := e.streamSpec("grid", n, "")
		if !withInput {
			b.Fatal("needs the input plugin (plugins/input-qmp) to start the guests' motion")
		}
		b.Cleanup(func() { e.Run("stop", "--grace", "0s", "--destroy", spec) })
		t0 := time.Now()
		e.MustRun("run", "--detach", spec)
		for g := 0; g < n; g++ {
			e.WaitReady("grid", g, 1)
		}
		b.Logf("nine guests ready in %.0f s", time.Since(t0).Seconds())
		base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "grid"))
		if err != nil {
			b.Fatal(err)
		}
		ctx := startChromium(b)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
			b.Fatal(err)
		}
		pageWait(b, ctx, "nine live tiles", fmt.Sprintf(allLive, n), 3*time.Minute)
		rect := pageEval[struct{ X, Y float64 }](b, ctx,
			`(() => { const r = document.querySelector('.tile[data-index="4"]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(rect.X, rect.Y)); err != nil {
			b.Fatal(err)
		}
		pageWait(b, ctx, "the centre tile at full size", `loco.focused && loco.focused.shown === 'full' && loco.focused.video.videoWidth === 800`, time.Minute)
		click := pageEval[float64](b, ctx, `loco.focused.shownAt - loco.focused.focusedAt`)
		b.Logf("click to the full-size stream in the focused tile: %.0f ms", click)
		b.ReportMetric(click, "focus-ms")
		time.Sleep(3 * time.Second)

		pid := childPID(b, e.Status(spec).LocoPID, "loco-plugin-stream-webrtc")
		measure := func(what string) {
			p0, _ := proc.Read(pid)
			s0 := time.Now()
			fps := pageEval[[]tileFPS](b, ctx, decodedFPS+"(10000)")
			p1, _ := proc.Read(pid)
			cpu := 100 * (p1.CPUSeconds() - p0.CPUSeconds()) / time.Since(s0).Seconds()
			var all []streamStat
			apiGet(b, base, tok, "/api/streams", &all)
			var kbps float64
			var rows []string
			for _, s := range all {
				if s.Viewers > 0 {
					kbps += s.Bitrate / 1000
					rows = append(rows, fmt.Sprintf("%s/%s %dx%d %.1f fps %.0f kbit/s", s.Name, s.Variant, s.Width, s.Height, s.FPS, s.Bitrate/1000))
				}
			}
			var tiles []string
			for _, f := range fps {
				tiles = append(tiles, fmt.Sprintf("%s %.1f", f.Name, f.FPS))
			}
			b.Logf("%s: plugin %.1f%% of a core, %.0f kbit/s in all; decoded fps per tile: %s", what, cpu, kbps, strings.Join(tiles, ", "))
			b.Logf("%s: encoders: %s", what, strings.Join(rows, "; "))
			b.ReportMetric(cpu, what+"-cpu-%")
			b.ReportMetric(kbps, what+"-kbit/s")
			b.ReportMetric(fps[4].FPS, what+"-full-fps")
			var thumb float64
			for i, f := range fps {
				if i != 4 {
					thumb += f.FPS / float64(len(fps)-1)
				}
			}
			b.ReportMetric(thumb, what+"-thumb-fps")
		}
		measure("still")
		f10 := func() {
			for g := 0; g < n; g++ {
				if _, err := client.New(base, tok, nil).Input(context.Background(), fmt.Sprint(g), client.Press("f10")); err != nil {
					b.Fatalf("F10 to guest %d: %v", g, err)
				}
			}
		}
		f10()
		time.Sleep(3 * time.Second)
		measure("moving")
		f10()
		e.Run("stop", "--grace", "0s", "--destroy", spec)
	}
}
