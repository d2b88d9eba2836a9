package qmpinput

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/qmp"
)

// screendumpPrefix names the files QEMU writes screenshots into, in the
// guest's state directory: QEMU opens the path itself, so it must be one
// both processes can reach, and the plugin reads and deletes it at once.
const screendumpPrefix = ".input-qmp-screendump-"

// guest is one guest's input QMP connection, dialed on first use and again
// whenever it breaks: the guest may not be booted yet when the plugin is
// configured, and the supervisor restarts a dead QEMU on a fresh socket.
type guest struct {
	in       sdk.Instance
	interval time.Duration
	timeout  time.Duration

	// batch is held for a whole Send, so the keys of two clients typing at
	// once never interleave within one batch.
	batch sync.Mutex
	// last is when the previous input command finished; guarded by batch.
	last time.Time

	// conn guards c. It is held for one QMP command at a time, so a
	// screenshot can slip in between the events of a long batch.
	conn   sync.Mutex
	c      *qmp.Client
	closed bool

	shots atomic.Uint64
}

func (g *guest) close() {
	g.conn.Lock()
	defer g.conn.Unlock()
	g.closed = true
	if g.c != nil {
		g.c.Close()
		g.c = nil
	}
}

// run executes one QMP command with the plugin's timeout, dialing first if
// need be. A reused connection that fails in transport is dialed once more
// and the command repeated: that is what a restarted QEMU looks like (its
// old socket is gone, the new one is fresh). A fresh connection's failure,
// a timeout or an error reply from QEMU is returned as is.
func (g *guest) run(ctx context.Context, command string, args, out any) error {
	g.conn.Lock()
	defer g.conn.Unlock()
	if g.closed {
		return fmt.Errorf("the plugin was reconfigured; retry: %w", sdk.ErrNotReady)
	}
	for {
		fresh := false
		if g.c == nil {
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			g.c, fresh = c, true
		}
		cctx, cancel := context.WithTimeout(ctx, g.timeout)
		err := g.c.Run(cctx, command, args, out)
		cancel()
		var qe *qmp.Error
		if err == nil || errors.As(err, &qe) {
			return g.qmpError(err)
		}
		// The client closed itself: a half-read reply cannot be trusted.
		g.c.Close()
		g.c = nil
		if fresh || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("guest %s: QMP %s: %w", g.in.Name, command, ctx.Err())
			case errors.Is(err, context.DeadlineExceeded):
				return fmt.Errorf("guest %s: QMP %s did not answer within %s: %w", g.in.Name, command, g.timeout, context.DeadlineExceeded)
			case hungUp(err):
				return fmt.Errorf("guest %s stopped: QEMU hung up during QMP %s: %w", g.in.Name, command, sdk.ErrGuestNotRunning)
			}
			return fmt.Errorf("guest %s: QMP %s: %v: %w", g.in.Name, command, err, sdk.ErrNotReady)
		}
		sdk.Logger().Info("input QMP connection broke; reconnecting", "guest", g.in.Name, "err", err)
	}
}

func (g *guest) dial(ctx context.Context) (*qmp.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := qmp.Dial(dctx, g.in.InputQMPSocket)
	switch {
	case err == nil:
		sdk.Logger().Debug("connected", "guest", g.in.Name, "socket", g.in.InputQMPSocket, "qemu", c.Version())
		return c, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("guest %s: connecting to QMP: %w", g.in.Name, ctx.Err())
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("guest %s is not running: nothing listens on its input QMP socket %s: %w", g.in.Name, g.in.InputQMPSocket, sdk.ErrGuestNotRunning)
	case hungUp(err):
		// A dying QEMU can still accept a connection it then drops.
		return nil, fmt.Errorf("guest %s is not running: QEMU hung up on its input QMP socket %s: %w", g.in.Name, g.in.InputQMPSocket, sdk.ErrGuestNotRunning)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("guest %s: QEMU did not greet on %s within %s: another client may hold it (QEMU serves one client per QMP socket): %w", g.in.Name, g.in.InputQMPSocket, g.timeout, sdk.ErrNotReady)
	default:
		return nil, fmt.Errorf("guest %s: %v: %w", g.in.Name, err, sdk.ErrNotReady)
	}
}

// hungUp reports whether QEMU closed the connection: what a QEMU that
// exits (or was killed) looks like from the socket.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// qmpError gives QEMU's refusals the sentinel a caller can act on.
func (g *guest) qmpError(err error) error {
	var qe *qmp.Error
	if !errors.As(err, &qe) {
		return err
	}
	switch {
	case qe.Desc == "VM not running":
		return fmt.Errorf("guest %s is paused or stopped: QEMU takes no input while the VM is not running: %w", g.in.Name, sdk.ErrGuestNotRunning)
	case strings.HasPrefix(qe.Desc, "Input handler not found for event type abs"):
		return fmt.Errorf("guest %s has no absolute pointer device: give it pointer = \"tablet\" "+
			"in its guest block, or move the mouse with relative motion (rel): %w", g.in.Name, sdk.ErrGuestNotRunning)
	case strings.Contains(qe.Desc, "no console") || strings.Contains(qe.Desc, "No graphic console"):
		return fmt.Errorf("guest %s has no display to take a screenshot of (vga = \"none\"?): %s: %w", g.in.Name, qe.Desc, sdk.ErrGuestNotRunning)
	default:
		return fmt.Errorf("guest %s: %w", g.in.Name, qe)
	}
}

// send delivers commands one QMP command each, at least g.interval apart.
// One command per event is what makes them arrive: QEMU delivers a
// command's events to the device, then syncs once, so a button press and
// release in one command collapse into no click, and a burst of keys
// overflows the 16-byte PS/2 queue before the guest reads any.
func (g *guest) send(ctx context.Context, cmds [][]qmpEvent) error {
	g.batch.Lock()
	defer g.batch.Unlock()
	for i, events := range cmds {
		if wait := time.Until(g.last.Add(g.interval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("guest %s: cancelled after %d of %d input commands: %w", g.in.Name, i, len(cmds), ctx.Err())
			case <-t.C:
			}
		}
		err := g.run(ctx, "input-send-event", struct {
			Events []qmpEvent `json:"events"`
		}{events}, nil)
		g.last = time.Now()
		if err != nil {
			if i == 0 {
				return err
			}
			return fmt.Errorf("%w (after %d of %d input commands were delivered)", err, i, len(cmds))
		}
	}
	return nil
}

// screenshot has QEMU write a PPM into the guest's state directory, then
// reads, removes and re-encodes it as PNG (see ppmToPNG for why).
func (g *guest) screenshot(ctx context.Context) (sdk.Screenshot, error) {
	dir := g.in.StateDir
	if !filepath.IsAbs(dir) {
		// The host's fault, not the guest's: the core always sends one.
		return sdk.Screenshot{}, fmt.Errorf("guest %s has no absolute state directory (%q) for QEMU to write a screenshot into", g.in.Name, dir)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s%d-%d.ppm", screendumpPrefix, os.Getpid(), g.shots.Add(1)))
	defer os.Remove(path)
	args := struct {
		Filename string `json:"filename"`
	}{path}
	if err := g.run(ctx, "screendump", args, nil); err != nil {
		return sdk.Screenshot{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return sdk.Screenshot{}, fmt.Errorf("guest %s: reading the screendump QEMU wrote: %w", g.in.Name, err)
	}
	png, w, h, err := ppmToPNG(b)
	if err != nil {
		return sdk.Screenshot{}, fmt.Errorf("guest %s: %w", g.in.Name, err)
	}
	return sdk.Screenshot{PNG: png, Width: w, Height: h}, nil
}
