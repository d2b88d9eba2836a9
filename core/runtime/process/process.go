// Package process is the default runtime driver: each guest is a QEMU
// process in its own session, so it outlives the loco process that started
// it, with its state (PID, start time, sockets, overlay) in the guest's
// directory.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/qemu"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/sdk/qmp"
)

// Driver runs guests as local processes.
type Driver struct {
	Log *slog.Logger
	// QEMUImg is the qemu-img binary; "" for "qemu-img".
	QEMUImg string
	// ReadyTimeout bounds how long a new QEMU gets to open its QMP socket.
	ReadyTimeout time.Duration
}

// New makes a process driver.
func New(log *slog.Logger) *Driver {
	return &Driver{Log: log, QEMUImg: "qemu-img", ReadyTimeout: 20 * time.Second}
}

var _ runtime.Runtime = (*Driver)(nil)

// record is what the driver keeps in the guest's directory to recognise its
// process later.
type record struct {
	Name      string    `json:"name"`
	PID       int       `json:"pid"`
	StartTick uint64    `json:"start_tick"` // /proc/PID/stat field 22: PIDs get reused, start times don't
	Started   time.Time `json:"started"`
	Args      []string  `json:"args"`
}

func recordPath(g plan.Guest) string { return filepath.Join(g.Dir, "guest.json") }

type guest struct {
	qmp        string // the core's QMP socket
	pid        int
	started    time.Time
	reattached bool
	exited     chan struct{}
	mu         sync.Mutex
	reason     string
}

func (g *guest) PID() int                { return g.pid }
func (g *guest) Started() time.Time      { return g.started }
func (g *guest) Exited() <-chan struct{} { return g.exited }
func (g *guest) Reattached() bool        { return g.reattached }
func (g *guest) ExitReason() string      { g.mu.Lock(); defer g.mu.Unlock(); return g.reason }

func (g *guest) exit(reason string) {
	g.mu.Lock()
	g.reason = reason
	g.mu.Unlock()
	close(g.exited)
}

// Start boots the guest.
func (d *Driver) Start(ctx context.Context, pg plan.Guest) (runtime.Guest, error) {
	if err := os.MkdirAll(pg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of guest %s: %w", pg.Name, err)
	}
	if pg.Overlay != "" {
		created, err := qemu.EnsureOverlay(ctx, d.QEMUImg, pg.BaseDisk, pg.Overlay)
		if err != nil {
			return nil, fmt.Errorf("preparing the disk of guest %s: %w", pg.Name, err)
		}
		if created {
			d.Log.Info("created disk overlay", "guest", pg.Name, "overlay", pg.Overlay, "base", pg.BaseDisk)
		}
	}
	// Sockets left by a guest that died would make QEMU fail to bind.
	for _, s := range []string{pg.QMPSocket, pg.InputQMPSocket, pg.ConsoleSocket, strings.TrimPrefix(pg.VNC, "unix:")} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket %s: %w", s, err)
		}
	}
	logPath := filepath.Join(pg.Dir, "qemu.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s starting %s\n", time.Now().Format(time.RFC3339), pg.Name)
	cmd := exec.Command(pg.Program, pg.Args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, pg.Dir
	if len(pg.Env) > 0 {
		cmd.Env = append(os.Environ(), pg.Env...)
	}
	// Its own session: Ctrl-C in loco's terminal, or loco dying, must not
	// take the guest with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU for guest %s: %w", pg.Name, err)
	}
	g := &guest{qmp: pg.QMPSocket, pid: cmd.Process.Pid, started: time.Now(), exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		reason := "exited"
		if err != nil {
			reason = err.Error()
		}
		g.exit(reason)
	}()
	tick, err := startTick(g.pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("reading the start time of guest %s: %w", pg.Name, err)
	}
	rec := record{Name: pg.Name, PID: g.pid, StartTick: tick, Started: g.started, Args: pg.Args}
	if err := writeJSON(recordPath(pg), rec); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	if err := d.waitQMP(ctx, pg, g); err != nil {
		_ = cmd.Process.Kill()
		<-g.exited
		return nil, fmt.Errorf("guest %s did not come up: %w%s", pg.Name, err, logTail(logPath))
	}
	d.Log.Info("guest started", "guest", pg.Name, "pid", g.pid)
	return g, nil
}

// waitQMP waits until the guest's QMP answers with the guest's name: then
// QEMU has parsed its command line and opened every socket.
func (d *Driver) waitQMP(ctx context.Context, pg plan.Guest, g *guest) error {
	ctx, cancel := context.WithTimeout(ctx, d.ReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("QEMU exited: %s", g.ExitReason())
		case <-ctx.Done():
			return fmt.Errorf("QMP did not answer within %v: %w", d.ReadyTimeout, errors.Join(ctx.Err(), lastErr))
		case <-time.After(50 * time.Millisecond):
		}
		if err := checkIdentity(ctx, pg); err != nil {
			lastErr = err
			continue
		}
		return nil
	}
}

func checkIdentity(ctx context.Context, pg plan.Guest) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, pg.QMPSocket)
	if err != nil {
		return err
	}
	defer c.Close()
	name, err := c.Name(ctx)
	if err != nil {
		return err
	}
	if name != pg.Name {
		return fmt.Errorf("the QEMU on %s is guest %q, not %q", pg.QMPSocket, name, pg.Name)
	}
	return nil
}

// Find reattaches to a running guest: the recorded PID must still be the
// same process (same start time), and its QMP must answer with the guest's
// name.
func (d *Driver) Find(ctx context.Context, pg plan.Guest) (runtime.Guest, bool, error) {
	var rec record
	if err := readJSON(recordPath(pg), &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if rec.Name != pg.Name || !alive(rec.PID) {
		return nil, false, nil
	}
	if tick, err := startTick(rec.PID); err != nil || tick != rec.StartTick {
		return nil, false, nil // the PID now belongs to another process
	}
	if err := checkIdentity(ctx, pg); err != nil {
		d.Log.Warn("a process runs under the guest's recorded PID but its QMP does not confirm it; not reattaching",
			"guest", pg.Name, "pid", rec.PID, "err", err)
		return nil, false, nil
	}
	// A guest restored from a snapshot was started with -loadvm on top of
	// its plan's command line (core/cluster); it is still that plan's guest.
	if args := rec.Args; !slices.Equal(args, pg.Args) && !slices.Equal(withoutLoadVM(args), pg.Args) {
		d.Log.Warn("running guest was started with another command line; restart it to apply the new spec", "guest", pg.Name)
	}
	g := &guest{qmp: pg.QMPSocket, pid: rec.PID, started: rec.Started, reattached: true, exited: make(chan struct{})}
	// Not our child: nobody can wait(2) for it, so watch /proc.
	go func() {
		for alive(g.pid) {
			time.Sleep(200 * time.Millisecond)
		}
		g.exit("exited (reattached guest; exit status unknown)")
	}()
	d.Log.Info("reattached to running guest", "guest", pg.Name, "pid", rec.PID)
	return g, true, nil
}

func withoutLoadVM(args []string) []string {
	if n := len(args); n >= 2 && args[n-2] == "-loadvm" {
		return args[:n-2]
	}
	return args
}

// Stop powers the guest down.
func (d *Driver) Stop(ctx context.Context, rg runtime.Guest, grace time.Duration) error {
	g := rg.(*guest)
	step := func(name string, f func(c *qmp.Client) error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		c, err := qmp.Dial(cctx, g.qmp)
		if err != nil {
			d.Log.Debug("QMP not reachable for "+name, "pid", g.pid, "err", err)
			return
		}
		defer c.Close()
		if err := f(c); err != nil {
			d.Log.Debug(name+" failed", "pid", g.pid, "err", err)
		}
	}
	wait := func(d time.Duration) bool {
		select {
		case <-g.exited:
			return true
		case <-time.After(d):
			return false
		case <-ctx.Done():
			return false
		}
	}
	if grace > 0 {
		step("system_powerdown", func(c *qmp.Client) error { return c.Powerdown(ctx) })
		if wait(grace) {
			return nil
		}
	}
	step("quit", func(c *qmp.Client) error { return c.Quit(ctx) })
	if wait(5 * time.Second) {
		return nil
	}
	d.Log.Warn("guest ignored quit; killing it", "pid", g.pid)
	_ = syscall.Kill(g.pid, syscall.SIGKILL)
	select {
	case <-g.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("guest process %d is still there after SIGKILL", g.pid)
	}
}

// Destroy deletes the guest's overlay.
func (d *Driver) Destroy(_ context.Context, pg plan.Guest) error {
	var rec record
	if err := readJSON(recordPath(pg), &rec); err == nil && alive(rec.PID) {
		if tick, err := startTick(rec.PID); err == nil && tick == rec.StartTick {
			return fmt.Errorf("guest %s is running (pid %d): stop it first", pg.Name, rec.PID)
		}
	}
	if pg.Overlay == "" {
		return nil
	}
	if err := os.Remove(pg.Overlay); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the overlay of guest %s: %w", pg.Name, err)
	}
	d.Log.Info("removed disk overlay", "guest", pg.Name, "overlay", pg.Overlay)
	return nil
}

// Status reads a guest's record without reattaching: for `loco status`.
func Status(pg plan.Guest) (pid int, started time.Time, running bool) {
	var rec record
	if err := readJSON(recordPath(pg), &rec); err != nil || rec.Name != pg.Name {
		return 0, time.Time{}, false
	}
	if !alive(rec.PID) {
		return rec.PID, rec.Started, false
	}
	tick, err := startTick(rec.PID)
	return rec.PID, rec.Started, err == nil && tick == rec.StartTick
}

func alive(pid int) bool { return proc.Alive(pid) }

func startTick(pid int) (uint64, error) {
	st, err := proc.Read(pid)
	return st.StartTick, err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 2048 {
		f.Seek(-2048, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	return "\nQEMU said:\n" + s
}
