package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/internal/testenv/locorun"
)

// BenchmarkBootToReady measures a cold `loco run --detach` until every test
// guest has printed LOCO-READY on its serial port, for 1, 3 and 9 guests
// under the accelerator loco picks. Run it on an idle machine:
//
//	go test -run '^$' -bench BootToReady -benchtime 1x ./cmd/loco
func BenchmarkBootToReady(b *testing.B) {
	for _, n := range []int{1, 3, 9} {
		b.Run(fmt.Sprintf("guests=%d", n), func(b *testing.B) {
			bin := filepath.Join(testenv.Binaries(b), "loco")
			guest := testenv.TestGuest(b)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := testenv.ShortTempDir(b)
				e := &e2e{&locorun.Harness{T: b, Bin: bin, Guest: guest, Dir: dir, StateDir: filepath.Join(dir, "state")}}
				spec := e.Spec("bench", n, "")
				// Let loco choose: the benchmark reports what users get.
				src, _ := os.ReadFile(spec)
				os.WriteFile(spec, []byte(strings.Replace(string(src), `accel  = "tcg"`, `accel  = "auto"`, 1)), 0o644)
				e.Run("plan", spec) // warms the accelerator probe's cache; not timed
				b.StartTimer()
				start := time.Now()
				if out, errOut, code := e.Run("run", "--detach", spec); code != 0 {
					b.Fatalf("run: %s%s", out, errOut)
				}
				for g := 0; g < n; g++ {
					for e.ReadyCount("bench", g) < 1 {
						if time.Since(start) > 10*time.Minute {
							b.Fatalf("guest %d not ready after 10 minutes", g)
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
				total += time.Since(start)
				b.StopTimer()
				e.Run("stop", "--grace", "0s", "--destroy", spec)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/cluster-ready")
		})
	}
}
