package streamer

import (
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
)

// BenchmarkChangeToEncoded measures the plugin's share of glass-to-glass
// latency: from a change on the guest's display (the fake VNC server
// sending a new full-screen colour) to the encoded frame that carries it
// leaving the pipeline, at 800x600 and the default frame rate.
//
//	go test -run '^$' -bench ChangeToEncoded -benchtime 1x ./plugins/stream-webrtc
func BenchmarkChangeToEncoded(b *testing.B) {
	for _, codec := range []string{"h264", "vp8"} {
		b.Run(codec, func(b *testing.B) {
			if err := gst.Init(); err != nil {
				b.Skip(err)
			}
			for name := range requiredElements(config{codec: codec}) {
				if !gst.HasElement(name) {
					b.Skipf("GStreamer element %s is not installed", name)
				}
			}
			cfg := config{codec: codec, framerate: defaultFramerate, bitrateKbps: defaultBitrate}
			for i := 0; i < b.N; i++ {
				lat := changeToEncoded(b, cfg, 40)
				b.ReportMetric(percentile(lat, 50), "p50-ms")
				b.ReportMetric(percentile(lat, 95), "p95-ms")
			}
		})
	}
}

func changeToEncoded(b *testing.B, cfg config, trials int) []float64 {
	sock := filepath.Join(b.TempDir(), "vnc.sock")
	f := newFakeVNC(&testing.T{}, sock, 800, 600)
	proxy, err := newRFBProxy("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	pl, err := gst.Launch(videoPipeline(cfg, proxy.Port(), size{800, 600}))
	if err != nil {
		b.Fatal(err)
	}
	defer pl.Close()
	if err := pl.Start(); err != nil {
		b.Fatal(err)
	}
	type out struct {
		at   time.Time
		size int
	}
	var mu sync.Mutex
	var outs []out
	done := make(chan struct{})
	defer close(done)
	go heartbeat(pl, cfg.framerate, done)
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s, err := pl.Pull(100 * time.Millisecond)
			if err != nil {
				return
			}
			if s != nil {
				mu.Lock()
				outs = append(outs, out{time.Now(), len(s.Data)})
				mu.Unlock()
			}
		}
	}()
	time.Sleep(2 * time.Second) // the first frame, key frame and encoder warm-up
	colors := []uint32{0x00ffffff, 0x00000000}
	var lat []float64
	for i := 0; i < trials; i++ {
		mu.Lock()
		outs = outs[:0]
		mu.Unlock()
		t0 := time.Now()
		f.change(colors[i%2])
		// The change is the first large frame after t0: a static screen
		// encodes to a few dozen bytes.
		deadline := t0.Add(3 * time.Second)
		found := false
		for !found && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			mu.Lock()
			for _, o := range outs {
				if o.size > bigFrame {
					lat = append(lat, float64(o.at.Sub(t0).Microseconds())/1000)
					found = true
					break
				}
			}
			mu.Unlock()
		}
		if !found {
			mu.Lock()
			var sizes []int
			for _, o := range outs {
				sizes = append(sizes, o.size)
			}
			mu.Unlock()
			b.Fatalf("trial %d: no encoded change within 3 s; frame sizes %v", i, sizes)
		}
		time.Sleep(time.Duration(150+(i*37)%200) * time.Millisecond)
	}
	return lat
}

// bigFrame tells a frame with a full-screen change from a repeated one.
const bigFrame = 400

func percentile(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[int(p/100*float64(len(s)-1))]
}
