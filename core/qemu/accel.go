package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultProbeTimeout is how long the KVM probe guest may take to reach its
// kernel panic. Under working KVM that takes about a second; the margin
// covers loaded hosts without making a hanging KVM expensive.
const DefaultProbeTimeout = 10 * time.Second

// probeMemoryMiB is the probe guest's RAM. A Debian 6.1 kernel silently
// triple-faults while decompressing with 64 MiB (QEMU exits at once with an
// empty serial log), which would read as "KVM broken". Guest RAM is only
// allocated when touched, so the extra headroom costs nothing.
const probeMemoryMiB = 256

// probeAppend makes the probe kernel panic right after boot: there is no
// initrd and the named init does not exist, and panic=-1 plus -no-reboot
// turn the panic into a QEMU exit.
const probeAppend = "console=ttyS0 panic=-1 rdinit=/loco-probe-none"

// ProbeOptions configures ProbeAccel.
type ProbeOptions struct {
	// Requested is "auto" (also when empty), AccelKVM or AccelTCG.
	Requested string
	// QEMU is the emulator; DefaultBinary when empty.
	QEMU string
	// Kernel is the guest's own kernel, booted in a throwaway probe guest.
	Kernel string
	// CacheFile remembers probe results across runs; empty disables it.
	// Delete it to force a new probe.
	CacheFile string
	// Timeout bounds the probe guest; DefaultProbeTimeout when zero.
	Timeout time.Duration
	// KVMDevice is the KVM device node; "/dev/kvm" when empty.
	KVMDevice string
}

// AccelChoice is the accelerator to run guests with and why it was chosen.
type AccelChoice struct {
	Accel  string // AccelKVM or AccelTCG
	Reason string // human-readable, for logs and status output
	Cached bool   // true when taken from ProbeOptions.CacheFile
}

// probeGuestRuns counts started probe guests so tests can tell a cache hit
// from a fresh probe without timing.
var probeGuestRuns atomic.Int64

// ProbeAccel decides between KVM and TCG. "kvm" and "tcg" are honoured
// without probing. "auto" picks KVM only if the KVM device opens read-write
// and a probe guest booted from opts.Kernel actually runs under KVM: some
// hosts (nested paravirtual KVM such as kvm-pvm) expose a working /dev/kvm
// on which Linux guests hang, so opening the device proves nothing.
//
// Probe verdicts are cached in opts.CacheFile, keyed by kernel, emulator and
// host kernel, so the probe runs once per machine. If only writing the cache
// fails, the returned choice is valid and the error says why it was not
// saved.
func ProbeAccel(ctx context.Context, opts ProbeOptions) (AccelChoice, error) {
	switch opts.Requested {
	case AccelTCG:
		return AccelChoice{Accel: AccelTCG, Reason: "TCG requested by configuration"}, nil
	case AccelKVM:
		return AccelChoice{Accel: AccelKVM, Reason: "KVM forced by configuration (not probed)"}, nil
	case "", "auto":
	default:
		return AccelChoice{}, fmt.Errorf("choosing accelerator: unknown request %q: must be \"auto\", %q or %q",
			opts.Requested, AccelKVM, AccelTCG)
	}

	if opts.Kernel == "" {
		return AccelChoice{Accel: AccelTCG, Reason: "no kernel to probe KVM with; using TCG"}, nil
	}
	// Checked on every call, before the cache: device permissions and
	// loaded modules change without anything in the cache key changing.
	dev := or(opts.KVMDevice, "/dev/kvm")
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return AccelChoice{Accel: AccelTCG, Reason: fmt.Sprintf("cannot open %s read-write (%v); using TCG", dev, err)}, nil
	}
	f.Close()

	qemu := or(opts.QEMU, DefaultBinary)
	key, err := makeProbeCacheKey(ctx, qemu, opts.Kernel)
	if err != nil {
		return AccelChoice{}, fmt.Errorf("choosing accelerator: %w", err)
	}
	if opts.CacheFile != "" {
		if e, ok := readProbeCache(opts.CacheFile, key); ok {
			return AccelChoice{
				Accel:  e.Accel,
				Reason: fmt.Sprintf("%s [probed %s, cached in %s]", e.Reason, e.ProbedAt.Format(time.RFC3339), opts.CacheFile),
				Cached: true,
			}, nil
		}
	}

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	choice, err := probeKVM(ctx, qemu, opts.Kernel, timeout)
	if err != nil {
		return AccelChoice{}, fmt.Errorf("choosing accelerator: %w", err)
	}
	if opts.CacheFile != "" {
		if err := writeProbeCache(opts.CacheFile, probeCacheEntry{
			Key: key, Accel: choice.Accel, Reason: choice.Reason, ProbedAt: time.Now().UTC(),
		}); err != nil {
			return choice, fmt.Errorf("choosing accelerator: saving probe result: %w", err)
		}
	}
	return choice, nil
}

// probeKVM boots kernel under KVM without a root file system and reports
// whether it reached the expected panic.
func probeKVM(ctx context.Context, qemu, kernel string, timeout time.Duration) (AccelChoice, error) {
	dir, err := os.MkdirTemp("", "loco-kvm-probe-")
	if err != nil {
		return AccelChoice{}, fmt.Errorf("probing KVM: %w", err)
	}
	defer os.RemoveAll(dir)
	serial := filepath.Join(dir, "serial.log")

	cmd := exec.Command(qemu,
		"-accel", "kvm",
		"-m", fmt.Sprint(probeMemoryMiB),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-no-reboot",
		"-serial", "file:"+serial,
		"-kernel", kernel,
		"-append", probeAppend)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return AccelChoice{}, fmt.Errorf("probing KVM: starting %s: %w", qemu, err)
	}
	probeGuestRuns.Add(1)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timer.C:
		cmd.Process.Kill()
		<-done
		return AccelChoice{Accel: AccelTCG, Reason: fmt.Sprintf(
			"KVM probe guest did not finish in %s (%s; nested paravirtual KVM?); using TCG",
			timeout, serialSummary(serial))}, nil
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return AccelChoice{}, fmt.Errorf("probing KVM: %w", ctx.Err())
	}
	took := time.Since(start).Round(10 * time.Millisecond)

	log, _ := os.ReadFile(serial)
	if bytes.Contains(log, []byte("Kernel panic")) {
		return AccelChoice{Accel: AccelKVM, Reason: fmt.Sprintf(
			"KVM probe guest reached its expected kernel panic in %s; using KVM", took)}, nil
	}
	status := "exit status 0"
	if waitErr != nil {
		status = waitErr.Error()
	}
	return AccelChoice{Accel: AccelTCG, Reason: fmt.Sprintf(
		"KVM probe guest exited after %s (%s) without a kernel panic (%s; qemu said %q); using TCG",
		took, status, serialSummary(serial), lastLine(stderr.String()))}, nil
}

// serialSummary describes how far the probe guest got, which tells a hang
// in early boot (empty log) from one later on.
func serialSummary(path string) string {
	log, err := os.ReadFile(path)
	if err != nil || len(log) == 0 {
		return "no serial output"
	}
	return fmt.Sprintf("%d bytes of serial output, last line %q", len(log), lastLine(string(log)))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// probeCacheKey identifies everything the verdict depends on: the guest
// kernel, the emulator and the host kernel (KVM lives there).
type probeCacheKey struct {
	Kernel      string `json:"kernel"`
	KernelSize  int64  `json:"kernel_size"`
	KernelMTime int64  `json:"kernel_mtime_ns"`
	QEMUVersion string `json:"qemu_version"`
	HostKernel  string `json:"host_kernel"`
}

type probeCacheEntry struct {
	Key      probeCacheKey `json:"key"`
	Accel    string        `json:"accel"`
	Reason   string        `json:"reason"`
	ProbedAt time.Time     `json:"probed_at"`
}

type probeCache struct {
	Entries []probeCacheEntry `json:"entries"`
}

func makeProbeCacheKey(ctx context.Context, qemu, kernel string) (probeCacheKey, error) {
	abs, err := filepath.Abs(kernel)
	if err != nil {
		return probeCacheKey{}, fmt.Errorf("resolving probe kernel %s: %w", kernel, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return probeCacheKey{}, fmt.Errorf("probe kernel: %w", err)
	}
	if !st.Mode().IsRegular() {
		return probeCacheKey{}, fmt.Errorf("probe kernel %s is not a regular file", abs)
	}
	out, err := runTool(ctx, qemu, "-version")
	if err != nil {
		return probeCacheKey{}, fmt.Errorf("reading QEMU version: %w", err)
	}
	version, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		return probeCacheKey{}, fmt.Errorf("reading host kernel release: %w", err)
	}
	return probeCacheKey{
		Kernel:      abs,
		KernelSize:  st.Size(),
		KernelMTime: st.ModTime().UnixNano(),
		QEMUVersion: version,
		HostKernel:  utsString(uts.Release[:]),
	}, nil
}

func utsString(field []int8) string {
	b := make([]byte, 0, len(field))
	for _, c := range field {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// readProbeCache treats an unreadable or corrupt cache as empty: the worst
// outcome is one extra probe, after which the file is rewritten.
func readProbeCache(path string, key probeCacheKey) (probeCacheEntry, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return probeCacheEntry{}, false
	}
	var c probeCache
	if json.Unmarshal(data, &c) != nil {
		return probeCacheEntry{}, false
	}
	for _, e := range c.Entries {
		if e.Key == key && (e.Accel == AccelKVM || e.Accel == AccelTCG) {
			return e, true
		}
	}
	return probeCacheEntry{}, false
}

// writeProbeCache upserts e and replaces the file atomically, so a reader
// never sees a torn file. Concurrent writers may drop each other's entry,
// which only costs a re-probe.
func writeProbeCache(path string, e probeCacheEntry) error {
	var c probeCache
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &c) // corrupt: start over
	}
	entries := []probeCacheEntry{e}
	for _, old := range c.Entries {
		if old.Key != e.Key {
			entries = append(entries, old)
		}
	}
	data, err := json.MarshalIndent(probeCache{Entries: entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding probe cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating probe cache directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing probe cache: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing probe cache %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing probe cache: %w", err)
	}
	return nil
}
