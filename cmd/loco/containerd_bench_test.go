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
	var shimKB int64
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			rt := (i + k) % 2 // alternate which runtime goes first
			dir := testenv.ShortTempDir(b)
			e := &e2e{t: b, bin: bin, guest: guest, dir: dir, stateDir: filepath.Join(dir, "state")}
			spec := e.spec("bench", 1, "")
			if rt == 1 {
				src := string(must(os.ReadFile(spec)))
				os.WriteFile(spec, []byte(strings.Replace(src, `runtime "process" {`, fmt.Sprintf("runtime \"containerd\" {\n    address = %q\n    namespace = \"e2e-bench\"", cd.Address), 1)), 0o644)
			}
			e.loco("plan", spec) // warms the accelerator cache; not timed
			start := time.Now()
			if out, errOut, code := e.loco("run", "--detach", spec); code != 0 {
				b.Fatalf("run: %s%s", out, errOut)
			}
			for e.readyCount("bench", 0) < 1 {
				if time.Since(start) > 5*time.Minute {
					b.Fatal("guest not ready after 5 minutes")
				}
				time.Sleep(20 * time.Millisecond)
			}
			ready[rt] += time.Since(start)
			if rt == 1 {
				shimKB += shimRSS(b, e.status(spec).Guests[0].PID)
			}
			start = time.Now()
			e.mustLoco("stop", spec)
			stop[rt] += time.Since(start)
			e.loco("stop", "--grace", "0s", "--destroy", spec)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ready[0].Seconds()/n, "s/ready-process")
	b.ReportMetric(ready[1].Seconds()/n, "s/ready-containerd")
	b.ReportMetric(ready[1].Seconds()/ready[0].Seconds(), "containerd/process")
	b.ReportMetric(stop[0].Seconds()/n, "s/stop-process")
	b.ReportMetric(stop[1].Seconds()/n, "s/stop-containerd")
	b.ReportMetric(float64(shimKB)/1024/n, "MB-shim-rss/guest")
}

// shimRSS is the resident memory (KiB) of the containerd shim that is the
// parent of the guest's QEMU.
func shimRSS(b *testing.B, qemuPID int) int64 {
	b.Helper()
	st := string(must(os.ReadFile(fmt.Sprintf("/proc/%d/stat", qemuPID))))
	fields := strings.Fields(st[strings.LastIndexByte(st, ')')+2:])
	ppid := must(strconv.Atoi(fields[1]))
	if cmd := string(must(os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)))); !strings.Contains(cmd, "containerd-shim") {
		b.Fatalf("the parent of QEMU %d is %q, not a shim", qemuPID, cmd)
	}
	for _, l := range strings.Split(string(must(os.ReadFile(fmt.Sprintf("/proc/%d/status", ppid)))), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return int64(must(strconv.Atoi(f[1])))
		}
	}
	b.Fatalf("no VmRSS for shim %d", ppid)
	return 0
}
