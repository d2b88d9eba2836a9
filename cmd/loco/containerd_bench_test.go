package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/runtime/containerd"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/internal/testenv/locorun"
)

// BenchmarkContainerdVsProcess boots one test guest with `loco run
// --detach` until LOCO-READY, once on the process runtime and once on
// containerd (a private daemon, loco's image imported before timing), in
// turns, and stops it with `loco stop` (ACPI power-off). It reports both
// start times, their ratio, both stop times and the RSS of the containerd
// shim that each guest adds. Run it on an idle machine:
//
//	go test -run '^$' -bench ContainerdVsProcess -benchtime 3x ./cmd/loco
func BenchmarkContainerdVsProcess(b *testing.B) {
	cd := testenv.StartContainerd(b)
	warm := containerd.New(slog.New(slog.DiscardHandler), containerd.Config{Address: cd.Address, Namespace: "e2e-bench"})
	if _, err := warm.EnsureImage(context.Background()); err != nil {
		b.Fatal(err)
	}
	warm.Close()
	bin := filepath.Join(testenv.Binaries(b), "loco")
	guest := testenv.TestGuest(b)
	var ready, stop [2]time.Duration
	var shimKB, shimPSS int64
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			rt := (i + k) % 2 // alternate which runtime goes first
			dir := testenv.ShortTempDir(b)
			e := &e2e{&locorun.Harness{T: b, Bin: bin, Guest: guest, Dir: dir, StateDir: filepath.Join(dir, "state")}}
			spec := e.Spec("bench", 1, "")
			if rt == 1 {
				src := string(must(os.ReadFile(spec)))
				os.WriteFile(spec, []byte(strings.Replace(src, `runtime "process" {`, fmt.Sprintf("runtime \"containerd\" {\n    address = %q\n    namespace = \"e2e-bench\"", cd.Address), 1)), 0o644)
			}
			e.Run("plan", spec) // warms the accelerator cache; not timed
			start := time.Now()
			if out, errOut, code := e.Run("run", "--detach", spec); code != 0 {
				b.Fatalf("run: %s%s", out, errOut)
			}
			for e.ReadyCount("bench", 0) < 1 {
				if time.Since(start) > 5*time.Minute {
					b.Fatal("guest not ready after 5 minutes")
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(start)
			ready[rt] += took
			if rt == 1 {
				rss, pss := shimMemory(b, e.Status(spec).Guests[0].PID)
				shimKB += rss
				shimPSS += pss
			}
			// The power button works once the agent has opened its third
			// input device; a stop before that waits out the grace.
			serial := filepath.Join(e.GuestDir("bench", 0), "serial.log")
			for strings.Count(string(must(os.ReadFile(serial))), "LOCO-AGENT input") < 3 {
				if time.Since(start) > 5*time.Minute {
					b.Fatal("the agent did not open its input devices")
				}
				time.Sleep(50 * time.Millisecond)
			}
			start = time.Now()
			e.MustRun("stop", spec)
			stop[rt] += time.Since(start)
			b.Logf("%s: ready in %v, stopped in %v", []string{"process", "containerd"}[rt], took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			e.Run("stop", "--grace", "0s", "--destroy", spec)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ready[0].Seconds()/n, "s/ready-process")
	b.ReportMetric(ready[1].Seconds()/n, "s/ready-containerd")
	b.ReportMetric(ready[1].Seconds()/ready[0].Seconds(), "containerd/process")
	b.ReportMetric(stop[0].Seconds()/n, "s/stop-process")
	b.ReportMetric(stop[1].Seconds()/n, "s/stop-containerd")
	b.ReportMetric(float64(shimKB)/1024/n, "MB-shim-rss/guest")
	b.ReportMetric(float64(shimPSS)/1024/n, "MB-shim-pss/guest")
}

// shimMemory is the resident and proportional memory (KiB) of the
// containerd shim that is the parent of the guest's QEMU: RSS counts the
// shim binary's pages that every shim shares, PSS splits them.
func shimMemory(b *testing.B, qemuPID int) (rss, pss int64) {
	b.Helper()
	st := string(must(os.ReadFile(fmt.Sprintf("/proc/%d/stat", qemuPID))))
	fields := strings.Fields(st[strings.LastIndexByte(st, ')')+2:])
	ppid := must(strconv.Atoi(fields[1]))
	if cmd := string(must(os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)))); !strings.Contains(cmd, "containerd-shim") {
		b.Fatalf("the parent of QEMU %d is %q, not a shim", qemuPID, cmd)
	}
	for _, l := range strings.Split(string(must(os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", ppid)))), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			switch f[0] {
			case "Rss:":
				rss = int64(must(strconv.Atoi(f[1])))
			case "Pss:":
				pss = int64(must(strconv.Atoi(f[1])))
			}
		}
	}
	if rss == 0 || pss == 0 {
		b.Fatalf("no Rss/Pss for shim %d", ppid)
	}
	return rss, pss
}
