// Package runtimetest is the conformance suite every runtime driver passes:
// start, reattach by identity, stop, destroy, disks kept, base never written.
// Guests are real QEMU processes started paused, so no boot is paid for.
package runtimetest

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/internal/testenv"
)

// Factory makes a fresh driver, as a new loco process would.
type Factory func(log *slog.Logger) runtime.Runtime

// PausedGuest plans a real QEMU that starts paused (-S): every runtime path
// is exercised without paying for a guest boot.
func PausedGuest(t testing.TB, root, name string, index int, base string) plan.Guest {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(index))
	g := plan.Guest{Index: index, Name: name, Dir: dir,
		QMPSocket: filepath.Join(dir, "qmp.sock"), InputQMPSocket: filepath.Join(dir, "input.sock"),
		ConsoleSocket: filepath.Join(dir, "console.sock"), VNC: "unix:" + filepath.Join(dir, "vnc.sock"),
		SerialLog: filepath.Join(dir, "serial.log"), PIDFile: filepath.Join(dir, "qemu.pid")}
	m := qemu.Machine{Name: name, Accel: "tcg", MemoryMiB: 32, VGA: "none", QMPSocket: g.QMPSocket,
		InputQMPSocket: g.InputQMPSocket, ConsoleSocket: g.ConsoleSocket, VNC: g.VNC, SerialLog: g.SerialLog,
		PIDFile: g.PIDFile, ExtraArgs: []string{"-S"}}
	if base != "" {
		g.BaseDisk, g.Overlay = base, filepath.Join(dir, "disk.qcow2")
		m.Disk = g.Overlay
	}
	args, err := m.Args()
	if err != nil {
		t.Fatal(err)
	}
	g.Program, g.Args = m.Program(), args
	return g
}

// ShortDir is a temporary directory with a short path, for unix sockets.
func ShortDir(t *testing.T) string { return testenv.ShortTempDir(t) }

func sum(t testing.TB, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// Run runs the suite against a driver.
func Run(t *testing.T, newDriver Factory) {
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, newDriver) })
	t.Run("qemu errors", func(t *testing.T) { qemuErrors(t, newDriver) })
}

func lifecycle(t *testing.T, New Factory) {
	root := ShortDir(t)
	base := filepath.Join(root, "base.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", base, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	baseSum := sum(t, base)
	pg := PausedGuest(t, root, "rt-0", 0, base)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx := context.Background()

	d := New(log)
	g, err := d.Start(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(g.PID(), syscall.SIGKILL) })
	if _, err := os.Stat(pg.Overlay); err != nil {
		t.Fatalf("no overlay: %v", err)
	}

	// A second driver, as a restarted loco would have, finds the same guest.
	found, ok, err := New(log).Find(ctx, pg)
	if err != nil || !ok {
		t.Fatalf("Find: ok=%v err=%v", ok, err)
	}
	if found.PID() != g.PID() || !found.Reattached() {
		t.Errorf("found pid %d (reattached %v), started %d", found.PID(), found.Reattached(), g.PID())
	}
	// Another guest's plan on the same directory must not match it.
	other := pg
	other.Name = "rt-9"
	if _, ok, _ := New(log).Find(ctx, other); ok {
		t.Error("Find matched a guest by directory alone, not identity")
	}
	if err := d.Destroy(ctx, pg); err == nil {
		t.Error("Destroy removed the overlay of a running guest")
	}

	// A paused guest ignores the power button: the grace runs out, quit ends it.
	if err := d.Stop(ctx, g, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Exited():
	default:
		t.Fatal("guest still running after Stop")
	}
	if _, ok, _ := New(log).Find(ctx, pg); ok {
		t.Error("Find reattached to a stopped guest")
	}

	// The overlay survives a stop and is reused on the next start.
	g2, err := d.Start(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, g2, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, pg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pg.Overlay); !os.IsNotExist(err) {
		t.Errorf("overlay still there after Destroy: %v", err)
	}
	for _, keep := range []string{base, pg.SerialLog, filepath.Join(pg.Dir, "qemu.log")} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("Destroy removed %s: %v", keep, err)
		}
	}
	if sum(t, base) != baseSum {
		t.Error("the base disk changed")
	}
}

func qemuErrors(t *testing.T, New Factory) {
	root := ShortDir(t)
	pg := PausedGuest(t, root, "rt-bad", 0, "")
	pg.Args = append(pg.Args, "-device", "no-such-device")
	_, err := New(slog.New(slog.NewTextHandler(os.Stderr, nil))).Start(context.Background(), pg)
	if err == nil {
		t.Fatal("a QEMU that cannot start was reported as started")
	}
	if !strings.Contains(err.Error(), "no-such-device") {
		t.Errorf("error does not show what QEMU said: %v", err)
	}
}
