package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/internal/testenv/locorun"
)

// allReachable says whether the LAN switch's prober gets an answer from
// every one of n guests: the switch's own view of "on the LAN".
func (e *e2e) allReachable(cl string, n int) bool {
	base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, cl))
	if err != nil {
		return false
	}
	st, err := client.New(base, tok, nil).LANStatus(context.Background())
	if err != nil || len(st.Ports) != n {
		return false
	}
	for _, p := range st.Ports {
		if !p.Reachable {
			return false
		}
	}
	return true
}

// untilReachable runs loco with args and returns how long it took from
// then until every guest answered on the LAN.
func (e *e2e) untilReachable(b *testing.B, cl string, n int, args ...string) time.Duration {
	start := time.Now()
	if out, errOut, code := e.Run(args...); code != 0 {
		b.Fatalf("loco %v: %s%s", args, out, errOut)
	}
	for !e.allReachable(cl, n) {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not every guest reachable after 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (e *e2e) guestRSS(b *testing.B, spec string) (total int64) {
	for _, g := range e.Status(spec).Guests {
		st, err := proc.Read(g.PID)
		if err != nil {
			b.Fatal(err)
		}
		total += st.RSSBytes()
	}
	return total
}

// BenchmarkWarmStart measures `loco run --from` until every guest of a LAN
// is reachable (the switch's prober, every 100 ms, gets its answer), against
// a cold `loco run` of the same cluster in the same run, and what a snapshot
// costs: save time, memory state on disk, overlay growth, QEMU RSS. Nine TCG
// guests are CPU heavy: run it alone, under the lock:
//
//	flock /tmp/loco-heavy.lock go test -run '^$' -bench 'WarmStart/guests=9' -benchtime 1x -timeout 20m ./cmd/loco
func BenchmarkWarmStart(b *testing.B) {
	for _, n := range []int{3, 9} {
		b.Run(fmt.Sprintf("guests=%d", n), func(b *testing.B) {
			e := &e2e{&locorun.Harness{T: b, Bin: filepath.Join(testenv.Binaries(b), "loco"), Guest: testenv.TestGuest(b)}}
			var cold, warm, save time.Duration
			var state, growth, rssCold, rssWarm int64
			b.ResetTimer() // ns/op is the warm start alone
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.Dir = testenv.ShortTempDir(b)
				e.StateDir = filepath.Join(e.Dir, "state")
				e.Specs = nil
				spec := e.snapshotSpec("bench", n, 96, filepath.Join(e.Guest, "base.qcow2"), "")
				e.Run("plan", spec) // warms the accelerator probe's cache; not timed
				cold += e.untilReachable(b, "bench", n, "run", "--detach", spec)
				for g := 0; g < n; g++ {
					// Settled: the agent is up (it starts after READY).
					for !regexp.MustCompile(`LOCO-AGENT control`).Match(must(os.ReadFile(filepath.Join(e.GuestDir("bench", g), "serial.log")))) {
						time.Sleep(100 * time.Millisecond)
					}
				}
				rssCold += e.guestRSS(b, spec) / int64(n)
				before := overlayBytes(b, e, n)
				start := time.Now()
				out := e.MustRun("snapshot", "save", spec, "--name", "bench")
				save += time.Since(start)
				growth += (overlayBytes(b, e, n) - before) / int64(n)
				b.Logf("save:\n%s", out)
				var list []cluster.SnapshotSummary
				if err := json.Unmarshal([]byte(e.MustRun("snapshot", "list", "--json", spec)), &list); err != nil || len(list) != 1 {
					b.Fatalf("snapshot list: %v %+v", err, list)
				}
				state += list[0].Bytes / int64(n)
				e.MustRun("stop", "--grace", "0s", spec)
				b.StartTimer()
				warm += e.untilReachable(b, "bench", n, "run", "--detach", "--from", "bench", spec)
				b.StopTimer()
				rssWarm += e.guestRSS(b, spec) / int64(n)
				for g := 0; g < n; g++ {
					if c := e.ReadyCount("bench", g); c != 1 {
						b.Errorf("guest %d booted again (%d LOCO-READY)", g, c)
					}
				}
				e.Run("stop", "--grace", "0s", "--destroy", spec)
			}
			N := float64(b.N)
			b.ReportMetric(warm.Seconds()/N, "s/warm-reachable")
			b.ReportMetric(cold.Seconds()/N, "s/cold-reachable")
			b.ReportMetric(cold.Seconds()/warm.Seconds(), "x-faster")
			b.ReportMetric(save.Seconds()/N, "s/save")
			b.ReportMetric(float64(state)/N/(1<<20), "MiB-state/guest")
			b.ReportMetric(float64(growth)/N/(1<<20), "MiB-overlay-growth/guest")
			b.ReportMetric(float64(rssCold)/N/(1<<20), "MiB-rss-cold/guest")
			b.ReportMetric(float64(rssWarm)/N/(1<<20), "MiB-rss-warm/guest")
		})
	}
}

func overlayBytes(b *testing.B, e *e2e, n int) (total int64) {
	for g := 0; g < n; g++ {
		st, err := os.Stat(filepath.Join(e.GuestDir("bench", g), "disk.qcow2"))
		if err != nil {
			b.Fatal(err)
		}
		total += st.Size()
	}
	return total
}
