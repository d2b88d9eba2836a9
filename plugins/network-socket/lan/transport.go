package lan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Guests reach the switch over unix datagram sockets (QEMU's -netdev dgram):
// connectionless, so when the switch restarts the guests carry on sending
// to the same path and the new switch picks up where the old one stopped.
// Each guest has its own socket pair, under the state directories:
//
//	guest:  <guest state dir>/net.sock       bound by QEMU (local.path)
//	switch: <cluster state dir>/lan/N.sock   bound here    (remote.path)
//
// A socket per guest identifies the sender by where a frame arrives, and
// gives every guest its own kernel queue.

// maxUnixPath is what fits in sockaddr_un.sun_path with its NUL.
const maxUnixPath = 107

// errInUse says a live process is bound to a socket path.
var errInUse = errors.New("in use by another process")

// bindUnixgram binds path, replacing a stale socket file but never one a
// live process is bound to: `loco plan` or `loco validate` must not steal a
// running cluster's LAN.
func bindUnixgram(path string) (*net.UnixConn, error) {
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialUnix("unixgram", nil, addr); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: %w", path, errInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	c, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", path, err)
	}
	return c, nil
}

// unixPort moves frames between one guest's QEMU and the switch.
type unixPort struct {
	sw        *Switch
	idx       int
	conn      *net.UnixConn // bound at the switch's path
	guestPath string
	// writeTimeout bounds how long a guest that does not read (paused, or
	// its NIC's ring full) can hold up its own queue.
	writeTimeout time.Duration
}

// readLoop forwards every datagram from the guest until the socket closes.
func (u *unixPort) readLoop() {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := u.conn.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.sw.log.Warn("reading from a guest socket", "guest", u.sw.ports[u.idx].name, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if from == nil || from.Name != u.guestPath {
			u.sw.drop(dropForeign, nil)
			continue
		}
		f := make([]byte, n)
		copy(f, buf[:n])
		u.sw.Ingress(u.idx, f)
	}
}

// writeLoop drains the port's queue into the guest's socket until ctx ends.
// It writes on its own socket connected to the guest, because only a
// connected datagram socket waits for room in the receiver's queue; an
// unconnected one just fails with EAGAIN.
func (u *unixPort) writeLoop(ctx context.Context) {
	p := u.sw.ports[u.idx]
	var out *net.UnixConn
	var retryAt time.Time
	defer func() {
		if out != nil {
			out.Close()
		}
	}()
	dial := func(now time.Time) bool {
		if now.Before(retryAt) {
			return false
		}
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: u.guestPath, Net: "unixgram"})
		if err != nil {
			// The guest is not running (yet): drop until it is, trying
			// again a little later rather than on every frame.
			retryAt = now.Add(250 * time.Millisecond)
			return false
		}
		out = c
		return true
	}
	for {
		var q queued
		select {
		case <-ctx.Done():
			return
		case q = <-p.queue:
		}
		f, now := q.f, time.Now()
		if now.Sub(q.at) > maxQueueDelay {
			u.sw.drop(dropExpired, p)
			continue
		}
		if out == nil && !dial(now) {
			u.sw.drop(dropPortDown, p)
			continue
		}
		err := u.write(out, f, now)
		if err != nil && !isTimeout(err) {
			// The guest's QEMU went away or restarted: its socket is a
			// new one, so connect again and retry once.
			out.Close()
			out = nil
			if dial(now) {
				err = u.write(out, f, now)
			}
		}
		switch {
		case err == nil:
			p.tx.add(f)
		case isTimeout(err):
			u.sw.drop(dropWriteTimeout, p)
		default:
			u.sw.drop(dropPortDown, p)
		}
	}
}

func (u *unixPort) write(c *net.UnixConn, f []byte, now time.Time) error {
	if c == nil {
		return syscall.ENOTCONN
	}
	c.SetWriteDeadline(now.Add(u.writeTimeout))
	_, err := c.Write(f)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
