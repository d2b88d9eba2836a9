// Package qmp is a client for QEMU's machine protocol (QMP) on a unix
// socket: capability negotiation, commands with context deadlines, and the
// error class QEMU replies with. It imports only the standard library, so a
// plugin can use it without pulling in anything else; the core uses the same
// client.
package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultDialTimeout bounds Dial when ctx has no deadline. QEMU accepts only
// one client per QMP socket and queues the rest without a greeting, so an
// unbounded dial could hang forever behind a stale client.
const DefaultDialTimeout = 5 * time.Second

// DefaultRunTimeout bounds a command when ctx has no deadline, so a wedged
// QEMU cannot hang the runtime.
const DefaultRunTimeout = 30 * time.Second

// Error is an error reply from QEMU, e.g. {"class":"GenericError",...}.
type Error struct {
	Command string // the command that failed
	Class   string // QMP error class, e.g. "GenericError", "CommandNotFound"
	Desc    string // QEMU's human-readable description
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Client is a QMP connection. Commands are serialised; asynchronous events
// are read and discarded. After a transport error or a timeout the
// connection is closed, because a half-read reply would desynchronise every
// later command; Dial again to continue.
//
// The protocol is spoken directly on a net.Conn rather than through
// go-qemu's SocketMonitor: that one drops the error class (it returns
// errors.New(desc)), cannot be cancelled while connecting and exposes no
// connection to put deadlines on.
type Client struct {
	conn    net.Conn
	dec     *json.Decoder
	version string

	// turn is a one-slot semaphore rather than a mutex so that a command
	// waiting behind a slow one still honours its context. Holding it
	// guards nextID and broken.
	turn   chan struct{}
	nextID uint64
	broken error

	closeOnce sync.Once
	closeErr  error
}

// message is any line QEMU sends on a QMP socket.
type message struct {
	QMP *struct {
		Version struct {
			QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
		} `json:"version"`
	} `json:"QMP"`
	Event  string          `json:"event"`
	ID     json.RawMessage `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// Dial connects to the QMP unix socket at path and completes the capability
// negotiation. It gives up at ctx's deadline, or after DefaultDialTimeout if
// ctx has none, including when the socket accepts but never greets (another
// client holds QEMU's only monitor slot).
func Dial(ctx context.Context, path string) (*Client, error) {
	ctx, cancel := withDefaultTimeout(ctx, DefaultDialTimeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to QMP socket %s: %w", path, err)
	}
	c := &Client{conn: conn, dec: json.NewDecoder(conn), turn: make(chan struct{}, 1)}
	stop := c.bindDeadline(ctx)
	defer stop()

	var greeting message
	if err := c.dec.Decode(&greeting); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading QMP greeting on %s: %w", path, ctxErr(ctx, err))
	}
	if greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("reading QMP greeting on %s: not a QMP socket (no \"QMP\" banner)", path)
	}
	v := greeting.QMP.Version.QEMU
	c.version = fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)

	if err := c.exchange(ctx, "qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("negotiating QMP capabilities on %s: %w", path, err)
	}
	return c, nil
}

// Version is the QEMU version from the greeting, e.g. "7.2.22".
func (c *Client) Version() string { return c.version }

// Run executes command with args (nil for none; anything json.Marshal
// accepts) and decodes the "return" value into out (nil to ignore it). An
// error reply from QEMU is returned as *Error. The wait is bounded by
// ctx, or DefaultRunTimeout if ctx has no deadline.
func (c *Client) Run(ctx context.Context, command string, args any, out any) error {
	ctx, cancel := withDefaultTimeout(ctx, DefaultRunTimeout)
	defer cancel()

	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: waiting for the previous command: %w", command, ctx.Err())
	}
	defer func() { <-c.turn }()
	// Checked before anything is sent: an expired context must not cost
	// the connection.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	stop := c.bindDeadline(ctx)
	defer stop()
	return c.exchange(ctx, command, args, out)
}

// exchange sends one command and waits for its reply; c.turn must be held
// (or c not yet shared, as in Dial) and the deadline bound.
func (c *Client) exchange(ctx context.Context, command string, args any, out any) error {
	if c.broken != nil {
		return fmt.Errorf("qmp %s: %w", command, &unusableError{c.broken})
	}
	c.nextID++
	id := fmt.Sprintf("loco-%d", c.nextID)
	req, err := json.Marshal(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id})
	if err != nil {
		return fmt.Errorf("qmp %s: encoding arguments: %w", command, err)
	}
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return c.fail(fmt.Errorf("qmp %s: sending: %w", command, ctxErr(ctx, err)))
	}
	for {
		var m message
		if err := c.dec.Decode(&m); err != nil {
			return c.fail(fmt.Errorf("qmp %s: reading reply: %w", command, ctxErr(ctx, err)))
		}
		if m.Event != "" {
			continue
		}
		var gotID string
		if json.Unmarshal(m.ID, &gotID) != nil || gotID != id {
			// Not ours (e.g. a stray reply without id); keep waiting.
			continue
		}
		if m.Error != nil {
			return &Error{Command: command, Class: m.Error.Class, Desc: m.Error.Desc}
		}
		if out != nil {
			if err := json.Unmarshal(m.Return, out); err != nil {
				return fmt.Errorf("qmp %s: decoding reply %s: %w", command, m.Return, err)
			}
		}
		return nil
	}
}

// fail records a transport error and closes the connection: the decoder may
// have consumed part of a reply, so the stream can no longer be trusted.
func (c *Client) fail(err error) error {
	c.broken = err
	c.Close()
	return err
}

// bindDeadline makes blocking reads and writes on c.conn end at ctx's
// deadline or cancellation. The returned func must be called before the
// connection is used with another context.
func (c *Client) bindDeadline(ctx context.Context) (stop func()) {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	}
	fired := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes up any blocked Read or Write now.
		c.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stopAfter() {
			// Let a late cancellation finish before clearing the
			// deadline, or it could hit the next command.
			<-fired
		}
		c.conn.SetDeadline(time.Time{})
	}
}

// Close closes the connection; it is safe to call more than once and
// concurrently with Run, which then fails.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// Status returns the VM run state from query-status, e.g. "running",
// "paused", "prelaunch" (started with -S) or "shutdown".
func (c *Client) Status(ctx context.Context) (string, error) {
	var r struct {
		Status string `json:"status"`
	}
	if err := c.Run(ctx, "query-status", nil, &r); err != nil {
		return "", err
	}
	return r.Status, nil
}

// Name returns the guest name given with -name (query-name); the runtime
// uses it to make sure a socket it reattaches to belongs to the right guest.
func (c *Client) Name(ctx context.Context) (string, error) {
	var r struct {
		Name string `json:"name"`
	}
	if err := c.Run(ctx, "query-name", nil, &r); err != nil {
		return "", err
	}
	return r.Name, nil
}

// Powerdown presses the virtual power button (ACPI); the guest decides
// whether and when to shut down.
func (c *Client) Powerdown(ctx context.Context) error {
	return c.Run(ctx, "system_powerdown", nil, nil)
}

// Quit makes QEMU exit immediately, without a guest shutdown.
func (c *Client) Quit(ctx context.Context) error {
	err := c.Run(ctx, "quit", nil, nil)
	// QEMU may close the socket before its reply reaches us; the process is
	// exiting either way, which is what was asked for.
	if err != nil && quitDisconnect(err) {
		return nil
	}
	return err
}

// Screendump writes the guest display to path, an absolute path on the host
// running QEMU (QEMU opens it, relative to its own working directory
// otherwise). format is "png" (QEMU 7.1+) or "ppm"; "" lets QEMU choose
// (ppm).
func (c *Client) Screendump(ctx context.Context, path, format string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("screendump to %q: path must be absolute, QEMU resolves it against its own working directory", path)
	}
	args := struct {
		Filename string `json:"filename"`
		Format   string `json:"format,omitempty"`
	}{path, format}
	return c.Run(ctx, "screendump", args, nil)
}

// SendInput injects input events (input-send-event), each a QMP InputEvent
// such as {"type":"key","data":{"down":true,"key":{"type":"qcode","data":"a"}}}.
// QEMU rejects input while the VM is paused ("VM not running").
func (c *Client) SendInput(ctx context.Context, events []json.RawMessage) error {
	args := struct {
		Events []json.RawMessage `json:"events"`
	}{events}
	return c.Run(ctx, "input-send-event", args, nil)
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// ctxErr prefers the context's reason over the "i/o timeout" that the
// connection deadline produces, so callers can test for
// context.DeadlineExceeded; both are kept in the chain.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	// The connection deadline can fire a moment before ctx's own timer.
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// quitDisconnect reports whether err is QEMU hanging up on this quit, as
// opposed to a QMP error or a connection that was already gone or closed by
// us (then nothing was sent and QEMU may still be running).
func quitDisconnect(err error) bool {
	var qe *Error
	var ue *unusableError
	if errors.As(err, &qe) || errors.As(err, &ue) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// unusableError marks commands refused because an earlier failure closed the
// connection.
type unusableError struct{ cause error }

func (e *unusableError) Error() string {
	return "connection unusable after earlier failure: " + e.cause.Error()
}
func (e *unusableError) Unwrap() error { return e.cause }
