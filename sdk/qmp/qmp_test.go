package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startPausedQEMU starts a paused TCG guest with a VGA card (screendump
// needs a display device) and returns it with its QMP socket path.
func startPausedQEMU(t *testing.T, name string) (*qemuProc, string) {
	t.Helper()
	sock := filepath.Join(shortDir(t), "qmp.sock")
	p := startQEMU(t, []string{
		"-name", name, "-S", "-accel", "tcg", "-m", "32", "-display", "none",
		"-nodefaults", "-no-user-config", "-vga", "std",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
	})
	return p, sock
}

func TestClientAgainstQEMU(t *testing.T) {
	p, sock := startPausedQEMU(t, "qmp-test")
	c := dialQMP(t, p, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if c.Version() == "" || c.Version() == "0.0.0" {
		t.Errorf("Version() = %q", c.Version())
	}
	if got, err := c.Name(ctx); err != nil || got != "qmp-test" {
		t.Errorf("Name() = %q, %v; want qmp-test", got, err)
	}
	if got, err := c.Status(ctx); err != nil || got != "prelaunch" {
		t.Errorf("Status() = %q, %v; want prelaunch", got, err)
	}

	shot := filepath.Join(t.TempDir(), "screen.png")
	if err := c.Screendump(ctx, shot, "png"); err != nil {
		t.Fatalf("Screendump: %v", err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screendump is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() == 0 || b.Dy() == 0 {
		t.Errorf("screendump is empty: %v", b)
	}
	if err := c.Screendump(ctx, "relative.png", "png"); err == nil {
		t.Error("Screendump to a relative path succeeded")
	}

	events := []json.RawMessage{
		json.RawMessage(`{"type":"key","data":{"down":true,"key":{"type":"qcode","data":"a"}}}`),
		json.RawMessage(`{"type":"key","data":{"down":false,"key":{"type":"qcode","data":"a"}}}`),
	}
	// QEMU refuses input while the VM is paused.
	var qe *Error
	if err := c.SendInput(ctx, events); !errors.As(err, &qe) {
		t.Errorf("SendInput on a paused VM = %v, want *Error", err)
	}
	if err := c.Run(ctx, "cont", nil, nil); err != nil {
		t.Fatalf("cont: %v", err)
	}
	if got, err := c.Status(ctx); err != nil || got != "running" {
		t.Errorf("Status() after cont = %q, %v; want running", got, err)
	}
	if err := c.SendInput(ctx, events); err != nil {
		t.Errorf("SendInput: %v", err)
	}
	if err := c.Powerdown(ctx); err != nil {
		t.Errorf("Powerdown: %v", err)
	}

	errTests := []struct {
		name      string
		command   string
		args      any
		wantClass string
	}{
		{"unknown command", "no-such-command", nil, "CommandNotFound"},
		{"bad arguments", "screendump", map[string]string{"filename": "/x", "format": "gif"}, "GenericError"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Run(ctx, tt.command, tt.args, nil)
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Run(%s) = %v, want *Error", tt.command, err)
			}
			if qe.Class != tt.wantClass || qe.Desc == "" || qe.Command != tt.command {
				t.Errorf("Error = %+v, want class %s", qe, tt.wantClass)
			}
		})
	}
	// A QMP error must not break the connection.
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("Status after QMP error: %v", err)
	}
	// Neither must a context that expired before anything was sent.
	expired, cancelExpired := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	if _, err := c.Status(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status with expired context = %v, want context.DeadlineExceeded", err)
	}
	cancelExpired()
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("Status after an expired context: %v", err)
	}

	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	p.wait(t, 20*time.Second)
	if _, err := c.Status(ctx); err == nil {
		t.Error("Status after Quit succeeded")
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// TestRunTimeout freezes a real QEMU with SIGSTOP so that it cannot answer,
// and checks that Run gives up at the context deadline and poisons the
// connection instead of leaving a reply in flight.
func TestRunTimeout(t *testing.T) {
	p, sock := startPausedQEMU(t, "frozen")
	c := dialQMP(t, p, sock)
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.Status(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Status on frozen QEMU = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Status on frozen QEMU ignored its context deadline")
	}

	p.cmd.Process.Signal(syscall.SIGCONT)
	_, err := c.Status(context.Background())
	if err == nil {
		t.Error("Status after a timed-out command succeeded on the same connection")
	}
}

func TestRunCancel(t *testing.T) {
	p, sock := startPausedQEMU(t, "cancel")
	c := dialQMP(t, p, sock)
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := c.Name(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Name after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Name ignored context cancellation")
	}
}

// silentListener accepts connections and never writes, like a QMP socket
// whose single client slot is taken or a process that is not QEMU.
func silentListener(t *testing.T, greeting string) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "silent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	// The accept loop can outlive the test by an instant: it must never
	// hand a connection to a cleanup that already ran (a send on a closed
	// channel panicked here under load).
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if greeting != "" {
				c.Write([]byte(greeting + "\n"))
			}
			mu.Lock()
			if closed {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return path
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error // nil: any error
	}{
		{
			name: "no greeting within deadline",
			path: func(t *testing.T) string { return silentListener(t, "") },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "no greeting until cancelled",
			path: func(t *testing.T) string { return silentListener(t, "") },
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "not a QMP socket",
			path: func(t *testing.T) string { return silentListener(t, `{"hello":"world"}`) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 5*time.Second)
			},
		},
		{
			name: "no socket",
			path: func(t *testing.T) string { return filepath.Join(shortDir(t), "none.sock") },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 5*time.Second)
			},
			wantErr: os.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			ctx, cancel := tt.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				c, err := Dial(ctx, path)
				if c != nil {
					c.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Dial succeeded")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("Dial = %v, want %v", err, tt.wantErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Dial ignored its context")
			}
		})
	}
}

// TestDialBusyMonitor covers the real reason Dial must be bounded: QEMU
// serves one client per QMP socket and leaves a second one waiting without a
// greeting.
func TestDialBusyMonitor(t *testing.T) {
	p, sock := startPausedQEMU(t, "busy")
	first := dialQMP(t, p, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	second, err := Dial(ctx, sock)
	if err == nil {
		second.Close()
		t.Fatal("second Dial to a busy QMP socket succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Dial = %v, want context.DeadlineExceeded", err)
	}
	// The first client is unaffected.
	if _, err := first.Status(context.Background()); err != nil {
		t.Errorf("first client after competing Dial: %v", err)
	}
}

// TestQuitAfterClose makes sure Quit does not report success when it could
// not send anything: QEMU is then still running.
func TestQuitAfterClose(t *testing.T) {
	p, sock := startPausedQEMU(t, "closed")
	c := dialQMP(t, p, sock)
	c.Close()
	if err := c.Quit(context.Background()); err == nil {
		t.Error("Quit on a closed client succeeded")
	}
	again := dialQMP(t, p, sock)
	if err := again.Quit(context.Background()); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	p.wait(t, 20*time.Second)
}
