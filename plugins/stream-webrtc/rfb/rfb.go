// Package rfb is the client side of the RFB (VNC) protocol, RFC 6143, as far
// as a stream plugin needs it against QEMU's VNC display: a capture
// connection that keeps the guest's framebuffer in BGRx, follows resizes
// (DesktopSize) and reports which rectangle changed.
// It speaks RFB 3.3/3.7/3.8 without authentication (QEMU serves it on a
// unix socket that only the guest's owner can open) and the raw encoding
// only: on a unix socket, copying pixels is cheaper than any compression.
package rfb

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Encodings and message types used here.
const (
	EncRaw         = 0
	EncDesktopSize = -223

	msgFBUpdate  = 0
	msgColourMap = 1
	msgBell      = 2
	msgCutText   = 3
)

// Size is a display resolution.
type Size struct{ W, H int }

func (s Size) String() string { return fmt.Sprintf("%dx%d", s.W, s.H) }

// Rect is a rectangle of the framebuffer.
type Rect struct{ X, Y, W, H int }

// Empty reports whether r covers no pixel.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Union is the smallest rectangle that covers r and o.
func (r Rect) Union(o Rect) Rect {
	if r.Empty() {
		return o
	}
	if o.Empty() {
		return r
	}
	x0, y0 := min(r.X, o.X), min(r.Y, o.Y)
	x1, y1 := max(r.X+r.W, o.X+o.W), max(r.Y+r.H, o.Y+o.H)
	return Rect{x0, y0, x1 - x0, y1 - y0}
}

// Target turns a stream plugin's view of the guest's display ("unix:/path"
// or "HOST:DISPLAY", DISPLAY counted from port 5900) into a network and
// address to dial.
func Target(vnc string) (network, addr string, err error) {
	if p, ok := strings.CutPrefix(vnc, "unix:"); ok {
		return "unix", p, nil
	}
	host, disp, ok := strings.Cut(vnc, ":")
	n, err := strconv.Atoi(disp)
	if !ok || err != nil || n < 0 || n > 65535-5900 {
		return "", "", fmt.Errorf("VNC endpoint %q: want unix:/path or HOST:DISPLAY", vnc)
	}
	return "tcp", net.JoinHostPort(host, strconv.Itoa(5900+n)), nil
}

// handshake speaks the client side of RFB up to ServerInit, shared (the
// stream never disconnects other viewers such as noVNC). It returns the
// framebuffer size and bits per pixel.
func handshake(r *bufio.Reader, w io.Writer) (Size, int, error) {
	var ver [12]byte
	if _, err := io.ReadFull(r, ver[:]); err != nil {
		return Size{}, 0, fmt.Errorf("reading the RFB version: %w", err)
	}
	if !strings.HasPrefix(string(ver[:]), "RFB 003.") {
		return Size{}, 0, fmt.Errorf("not an RFB server: %q", ver)
	}
	minor, _ := strconv.Atoi(strings.TrimSpace(string(ver[8:11])))
	reply := "RFB 003.008\n"
	if minor < 7 {
		reply = "RFB 003.003\n"
	} else if minor == 7 {
		reply = "RFB 003.007\n"
	}
	if _, err := io.WriteString(w, reply); err != nil {
		return Size{}, 0, err
	}
	if minor < 7 {
		var t uint32
		if err := binary.Read(r, binary.BigEndian, &t); err != nil {
			return Size{}, 0, err
		}
		if t != 1 {
			return Size{}, 0, fmt.Errorf("the VNC server wants security type %d; loco needs it without authentication", t)
		}
	} else {
		n, err := r.ReadByte()
		if err != nil {
			return Size{}, 0, err
		}
		if n == 0 {
			return Size{}, 0, fmt.Errorf("the VNC server refused the connection: %s", readReason(r))
		}
		types := make([]byte, n)
		if _, err := io.ReadFull(r, types); err != nil {
			return Size{}, 0, err
		}
		if !strings.ContainsRune(string(types), 1) {
			return Size{}, 0, fmt.Errorf("the VNC server offers security types %v, not 1 (none)", types)
		}
		if _, err := w.Write([]byte{1}); err != nil {
			return Size{}, 0, err
		}
		if minor >= 8 {
			var res uint32
			if err := binary.Read(r, binary.BigEndian, &res); err != nil {
				return Size{}, 0, err
			}
			if res != 0 {
				return Size{}, 0, fmt.Errorf("the VNC server rejected the connection: %s", readReason(r))
			}
		}
	}
	if _, err := w.Write([]byte{1}); err != nil { // ClientInit: shared
		return Size{}, 0, err
	}
	var init struct {
		W, H uint16
		BPP  uint8
		_    [15]byte
		N    uint32
	}
	if err := binary.Read(r, binary.BigEndian, &init); err != nil {
		return Size{}, 0, fmt.Errorf("reading ServerInit: %w", err)
	}
	if init.N > 1<<16 {
		return Size{}, 0, fmt.Errorf("ServerInit names a desktop of %d bytes", init.N)
	}
	if _, err := r.Discard(int(init.N)); err != nil {
		return Size{}, 0, err
	}
	return Size{int(init.W), int(init.H)}, int(init.BPP), nil
}

func setEncodings(w io.Writer, encodings ...int32) error {
	msg := []byte{2, 0, 0, 0}
	binary.BigEndian.PutUint16(msg[2:], uint16(len(encodings)))
	for _, e := range encodings {
		msg = binary.BigEndian.AppendUint32(msg, uint32(e))
	}
	_, err := w.Write(msg)
	return err
}

func readReason(r *bufio.Reader) string {
	var n uint32
	if binary.Read(r, binary.BigEndian, &n) != nil || n > 4096 {
		return "(no reason given)"
	}
	b := make([]byte, n)
	io.ReadFull(r, b)
	return string(b)
}

// skipMessage consumes a server message other than FramebufferUpdate.
func skipMessage(r *bufio.Reader, t byte) error {
	switch t {
	case msgColourMap:
		var h struct {
			_        uint8
			First, N uint16
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return err
		}
		_, err := r.Discard(int(h.N) * 6)
		return err
	case msgBell:
		return nil
	case msgCutText:
		var h struct {
			_ [3]byte
			N uint32
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return err
		}
		_, err := r.Discard(int(h.N))
		return err
	default:
		return fmt.Errorf("unexpected RFB message type %d", t)
	}
}

type rectHeader struct {
	X, Y, W, H uint16
	Enc        int32
}

func dial(ctx context.Context, network, addr string) (net.Conn, *bufio.Reader, Size, int, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, nil, Size{}, 0, fmt.Errorf("connecting to the guest's VNC display: %w", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(conn, 256<<10)
	s, bpp, err := handshake(r, conn)
	if err != nil {
		conn.Close()
		return nil, nil, Size{}, 0, fmt.Errorf("greeting the guest's VNC display: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, r, s, bpp, nil
}
