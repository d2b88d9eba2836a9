package main

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkInputToDisplay measures input-to-display latency through the
// whole stack: from the API call that presses a key (API, gRPC, plugin,
// QMP) until a screenshot taken through the API (QMP screendump, PNG)
// shows the test guest's echo of it on the VGA console. A trial ends when
// the first changed screenshot has arrived, so the figure includes up to
// one screenshot more than the change needed. Screenshots are compared as
// PNG bytes (the plugin encodes deterministically and the kernel hides the
// cursor), so the test adds no decoding. 50 trials per iteration:
//
//	go test -run '^$' -bench InputToDisplay -benchtime 1x ./cmd/loco
func BenchmarkInputToDisplay(b *testing.B) {
	c := startInputCluster(b, "lat", 1, "")
	c.waitInputReady(0)
	const trials = 50
	var lat, shots, calls []time.Duration
	settle := func() []byte {
		// The previous trial's echoes may still be drawing; the idle
		// screen (no cursor) is still once two screenshots agree.
		prev := c.screenshotPNG(0)
		for {
			time.Sleep(50 * time.Millisecond)
			cur := c.screenshotPNG(0)
			if bytes.Equal(prev, cur) {
				return cur
			}
			prev = cur
		}
	}
	b.ResetTimer()
	for range b.N {
		for trial := range trials {
			b.StopTimer()
			before := settle()
			key := string(rune('a' + trial%26))
			b.StartTimer()
			start := time.Now()
			c.ok("POST", "/api/instances/0/input", fmt.Sprintf(`{"events":[{"key":{"qcode":%q,"down":true}}]}`, key))
			calls = append(calls, time.Since(start))
			for {
				t0 := time.Now()
				after := c.screenshotPNG(0)
				shots = append(shots, time.Since(t0))
				if !bytes.Equal(before, after) {
					lat = append(lat, time.Since(start))
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("trial %d: the screen did not change within 10 s of the key press", trial)
				}
			}
			b.StopTimer()
			c.ok("POST", "/api/instances/0/input", fmt.Sprintf(`{"events":[{"key":{"qcode":%q,"down":false}}]}`, key))
			b.StartTimer()
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		i := int(float64(len(s))*p+0.999999) - 1
		return float64(s[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.95), "p95-ms")
	b.ReportMetric(pct(lat, 1), "max-ms")
	b.ReportMetric(pct(shots, 0.50), "screenshot-p50-ms")
	b.ReportMetric(pct(calls, 0.50), "input-call-p50-ms")
	b.Logf("%d trials; latencies (ms): %v", len(lat), lat)
}
