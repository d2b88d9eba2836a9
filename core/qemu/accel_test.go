package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProbeAccelWithoutProbe(t *testing.T) {
	tests := []struct {
		name       string
		opts       ProbeOptions
		wantAccel  string
		wantReason string
		wantErr    bool
	}{
		{"tcg requested", ProbeOptions{Requested: "tcg", Kernel: "/nonexistent"}, AccelTCG, "TCG requested", false},
		{"kvm forced", ProbeOptions{Requested: "kvm", Kernel: "/nonexistent"}, AccelKVM, "forced", false},
		{"auto without kernel", ProbeOptions{Requested: "auto"}, AccelTCG, "no kernel to probe KVM with; using TCG", false},
		{"empty means auto", ProbeOptions{}, AccelTCG, "no kernel to probe KVM with", false},
		{"kvm device unusable", ProbeOptions{Kernel: "/nonexistent", KVMDevice: "/nonexistent/kvm"}, AccelTCG, "cannot open /nonexistent/kvm read-write", false},
		{"unknown request", ProbeOptions{Requested: "hvf"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := probeGuestRuns.Load()
			got, err := ProbeAccel(context.Background(), tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ProbeAccel = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Accel != tt.wantAccel || !strings.Contains(got.Reason, tt.wantReason) || got.Cached {
				t.Errorf("ProbeAccel = %+v, want accel %s with reason containing %q", got, tt.wantAccel, tt.wantReason)
			}
			if n := probeGuestRuns.Load() - runs; n != 0 {
				t.Errorf("started %d probe guests, want none", n)
			}
		})
	}
}

// TestProbeAccelAuto runs the real probe. It does not assert which
// accelerator wins: that depends on the machine running the tests.
func TestProbeAccelAuto(t *testing.T) {
	kernel := testKernel(t)
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		// Still a valid run: ProbeAccel must answer TCG without probing.
		t.Logf("/dev/kvm unusable here (%v); the probe guest will not start", err)
	} else {
		f.Close()
	}
	cache := filepath.Join(t.TempDir(), "state", "accel.json")
	opts := ProbeOptions{Requested: "auto", Kernel: kernel, CacheFile: cache}

	runs := probeGuestRuns.Load()
	start := time.Now()
	first, err := ProbeAccel(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe chose %s in %s: %s", first.Accel, time.Since(start).Round(time.Millisecond), first.Reason)
	if first.Accel != AccelKVM && first.Accel != AccelTCG {
		t.Fatalf("Accel = %q", first.Accel)
	}
	if first.Reason == "" || first.Cached {
		t.Errorf("first probe = %+v, want a reason and no cache hit", first)
	}
	probed := probeGuestRuns.Load() - runs
	if probed > 1 {
		t.Errorf("started %d probe guests, want at most 1", probed)
	}

	second, err := ProbeAccel(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := probeGuestRuns.Load() - runs; n != probed {
		t.Errorf("second ProbeAccel started another probe guest")
	}
	if probed == 1 {
		if !second.Cached || second.Accel != first.Accel || !strings.Contains(second.Reason, first.Reason) {
			t.Errorf("second ProbeAccel = %+v, want cached %+v", second, first)
		}
	}
}

func TestProbeCacheKeyTracksKernel(t *testing.T) {
	ctx := context.Background()
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	k1, err := makeProbeCacheKey(ctx, DefaultBinary, kernel)
	if err != nil {
		t.Fatal(err)
	}
	if k1.QEMUVersion == "" || k1.HostKernel == "" || k1.Kernel != kernel {
		t.Errorf("incomplete key %+v", k1)
	}
	if err := os.Chtimes(kernel, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	k2, err := makeProbeCacheKey(ctx, DefaultBinary, kernel)
	if err != nil {
		t.Fatal(err)
	}
	if k1 == k2 {
		t.Error("cache key unchanged after the kernel's mtime changed")
	}
	if _, err := makeProbeCacheKey(ctx, DefaultBinary, filepath.Dir(kernel)); err == nil {
		t.Error("a directory was accepted as probe kernel")
	}
}

func TestProbeCacheFile(t *testing.T) {
	dir := t.TempDir()
	keyA := probeCacheKey{Kernel: "/a", KernelSize: 1, QEMUVersion: "q", HostKernel: "h"}
	keyB := keyA
	keyB.Kernel = "/b"
	entryA := probeCacheEntry{Key: keyA, Accel: AccelTCG, Reason: "ra", ProbedAt: time.Unix(1, 0).UTC()}
	entryB := probeCacheEntry{Key: keyB, Accel: AccelKVM, Reason: "rb", ProbedAt: time.Unix(2, 0).UTC()}

	tests := []struct {
		name    string
		initial string // file content before writing; "" = no file
		write   []probeCacheEntry
		lookup  probeCacheKey
		want    *probeCacheEntry
	}{
		{"missing file", "", nil, keyA, nil},
		{"round trip", "", []probeCacheEntry{entryA}, keyA, &entryA},
		{"keeps other keys", "", []probeCacheEntry{entryA, entryB}, keyA, &entryA},
		{"other key misses", "", []probeCacheEntry{entryA}, keyB, nil},
		{"corrupt file is a miss", "{not json", nil, keyA, nil},
		{"corrupt file is overwritten", "{not json", []probeCacheEntry{entryB}, keyB, &entryB},
		{"invalid accel is a miss", `{"entries":[{"key":{"kernel":"/a","kernel_size":1,"qemu_version":"q","host_kernel":"h"},"accel":"xen"}]}`, nil, keyA, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.Repeat("x", i+1), "accel.json")
			if tt.initial != "" {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(tt.initial), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, e := range tt.write {
				if err := writeProbeCache(path, e); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := readProbeCache(path, tt.lookup)
			switch {
			case tt.want == nil && ok:
				t.Errorf("cache hit %+v, want miss", got)
			case tt.want != nil && (!ok || got.Accel != tt.want.Accel || got.Reason != tt.want.Reason || !got.ProbedAt.Equal(tt.want.ProbedAt)):
				t.Errorf("cache lookup = %+v, %v; want %+v", got, ok, *tt.want)
			}
		})
	}
}
