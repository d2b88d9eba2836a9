package streamer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vncTarget turns sdk.Instance.VNC ("unix:/path" or "127.0.0.1:N", N the
// display number) into a network and address to dial.
func vncTarget(vnc string) (network, addr string, err error) {
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

// Pseudo-encodings and messages of RFB (RFC 6143) the watcher uses.
const (
	encRaw         = 0
	encDesktopSize = -223
	msgFBUpdate    = 0
	msgColourMap   = 1
	msgBell        = 2
	msgCutText     = 3
)

// size is a guest display resolution.
type size struct{ W, H int }

func (s size) String() string { return fmt.Sprintf("%dx%d", s.W, s.H) }

// watchVNC keeps a view-only RFB connection to the guest's display that asks
// for nothing but the DesktopSize pseudo-encoding, so QEMU tells it at once
// whenever the guest changes resolution (rfbsrc does not follow resizes; the
// pipeline must be rebuilt). onSize gets the size at every (re)connect and
// at every change; onDown when the connection is lost (the guest stopped or
// restarted). It returns when ctx ends.
func watchVNC(ctx context.Context, network, addr string, onSize func(size), onDown func(error)) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := watchOnce(ctx, network, addr, func(s size) {
			backoff = 200 * time.Millisecond
			onSize(s)
		})
		if ctx.Err() != nil {
			return
		}
		onDown(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 3*time.Second)
	}
}

func watchOnce(ctx context.Context, network, addr string, onSize func(size)) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("connecting to the guest's VNC display: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	s, bpp, err := rfbHandshake(r, conn, []int32{encDesktopSize})
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Time{})
	onSize(s)
	for {
		s2, changed, err := readServerMessage(r, bpp)
		if err != nil {
			return fmt.Errorf("reading from the guest's VNC display: %w", err)
		}
		if changed {
			onSize(s2)
		}
	}
}

// rfbHandshake speaks the client side of RFB 3.3/3.7/3.8 up to and including
// SetEncodings, with no authentication (QEMU's VNC on a unix socket or
// loopback has none). It returns the framebuffer size and bits per pixel.
func rfbHandshake(r *bufio.Reader, w io.Writer, encodings []int32) (size, int, error) {
	var ver [12]byte
	if _, err := io.ReadFull(r, ver[:]); err != nil {
		return size{}, 0, fmt.Errorf("reading the RFB version: %w", err)
	}
	if !strings.HasPrefix(string(ver[:]), "RFB 003.") {
		return size{}, 0, fmt.Errorf("not an RFB server: %q", ver)
	}
	minor, _ := strconv.Atoi(strings.TrimSpace(string(ver[8:11])))
	reply := "RFB 003.008\n"
	if minor < 7 {
		reply = "RFB 003.003\n"
	} else if minor == 7 {
		reply = "RFB 003.007\n"
	}
	if _, err := io.WriteString(w, reply); err != nil {
		return size{}, 0, err
	}
	if minor < 7 {
		var t uint32
		if err := binary.Read(r, binary.BigEndian, &t); err != nil {
			return size{}, 0, err
		}
		if t != 1 {
			return size{}, 0, fmt.Errorf("the VNC server wants security type %d; loco needs it without authentication", t)
		}
	} else {
		n, err := r.ReadByte()
		if err != nil {
			return size{}, 0, err
		}
		if n == 0 {
			return size{}, 0, fmt.Errorf("the VNC server refused the connection: %s", readReason(r))
		}
		types := make([]byte, n)
		if _, err := io.ReadFull(r, types); err != nil {
			return size{}, 0, err
		}
		if !strings.ContainsRune(string(types), 1) {
			return size{}, 0, fmt.Errorf("the VNC server offers security types %v, not 1 (none)", types)
		}
		if _, err := w.Write([]byte{1}); err != nil {
			return size{}, 0, err
		}
		if minor >= 8 {
			var res uint32
			if err := binary.Read(r, binary.BigEndian, &res); err != nil {
				return size{}, 0, err
			}
			if res != 0 {
				return size{}, 0, fmt.Errorf("the VNC server rejected the connection: %s", readReason(r))
			}
		}
	}
	// ClientInit: shared, so the stream never disconnects other viewers
	// (rfbsrc, noVNC) of the same display.
	if _, err := w.Write([]byte{1}); err != nil {
		return size{}, 0, err
	}
	var init struct {
		W, H uint16
		BPP  uint8
		_    [15]byte
		N    uint32
	}
	if err := binary.Read(r, binary.BigEndian, &init); err != nil {
		return size{}, 0, fmt.Errorf("reading ServerInit: %w", err)
	}
	if _, err := r.Discard(int(init.N)); err != nil {
		return size{}, 0, err
	}
	msg := []byte{2, 0, 0, 0}
	binary.BigEndian.PutUint16(msg[2:], uint16(len(encodings)))
	for _, e := range encodings {
		msg = binary.BigEndian.AppendUint32(msg, uint32(e))
	}
	if _, err := w.Write(msg); err != nil {
		return size{}, 0, err
	}
	return size{int(init.W), int(init.H)}, int(init.BPP), nil
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

// readServerMessage consumes one server message and reports a DesktopSize
// change in it. The watcher asks for no pixels, but a raw rectangle (which
// any server may send) is skipped correctly; other encodings cannot be
// skipped without decoding them, so they end the connection.
func readServerMessage(r *bufio.Reader, bpp int) (size, bool, error) {
	t, err := r.ReadByte()
	if err != nil {
		return size{}, false, err
	}
	switch t {
	case msgFBUpdate:
		var h struct {
			_ uint8
			N uint16
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return size{}, false, err
		}
		var out size
		changed := false
		for i := 0; i < int(h.N); i++ {
			var rect struct {
				X, Y, W, H uint16
				Enc        int32
			}
			if err := binary.Read(r, binary.BigEndian, &rect); err != nil {
				return size{}, false, err
			}
			switch rect.Enc {
			case encDesktopSize:
				out, changed = size{int(rect.W), int(rect.H)}, true
			case encRaw:
				if _, err := r.Discard(int(rect.W) * int(rect.H) * bpp / 8); err != nil {
					return size{}, false, err
				}
			default:
				return size{}, false, fmt.Errorf("unexpected rectangle encoding %d", rect.Enc)
			}
		}
		return out, changed, nil
	case msgColourMap:
		var h struct {
			_        uint8
			First, N uint16
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return size{}, false, err
		}
		_, err := r.Discard(int(h.N) * 6)
		return size{}, false, err
	case msgBell:
		return size{}, false, nil
	case msgCutText:
		var h struct {
			_ [3]byte
			N uint32
		}
		if err := binary.Read(r, binary.BigEndian, &h); err != nil {
			return size{}, false, err
		}
		_, err := r.Discard(int(h.N))
		return size{}, false, err
	default:
		return size{}, false, fmt.Errorf("unexpected RFB message type %d", t)
	}
}

// rfbProxy hands rfbsrc, which speaks only TCP, the guest's VNC display,
// which QEMU serves on a unix socket. It listens on an ephemeral loopback
// port and forwards exactly one connection, and only one that this very
// process opened: any local user can connect to a loopback port, and a VNC
// connection can type into the guest. Owning the connection also lets the
// plugin cut it, which is what unblocks rfbsrc when a pipeline is torn down.
type rfbProxy struct {
	ln      net.Listener
	network string
	addr    string
	mu      sync.Mutex
	conns   []net.Conn
	closed  bool
}

func newRFBProxy(network, addr string) (*rfbProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for rfbsrc on loopback: %w", err)
	}
	p := &rfbProxy{ln: ln, network: network, addr: addr}
	go p.serve()
	return p, nil
}

// Port is where rfbsrc must connect.
func (p *rfbProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *rfbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !fromThisProcess(c) {
			logger.Warn("refused a connection to the rfbsrc proxy from another process", "from", c.RemoteAddr())
			c.Close()
			continue
		}
		p.ln.Close() // one connection per pipeline
		g, err := net.DialTimeout(p.network, p.addr, 5*time.Second)
		if err != nil {
			logger.Warn("rfbsrc proxy cannot reach the guest's display", "addr", p.addr, "err", err)
			c.Close()
			return
		}
		if !p.track(c, g) {
			return
		}
		go func() { io.Copy(g, c); g.Close() }()
		io.Copy(c, g)
		c.Close()
		return
	}
}

func (p *rfbProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// Close cuts the connection: rfbsrc's blocking read fails and its thread
// lets the pipeline stop.
func (p *rfbProxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
}

// fromThisProcess checks that the peer of an accepted loopback connection
// is a socket this process holds: the kernel's TCP table gives the peer
// socket's inode, and /proc/self/fd lists the sockets we own.
func fromThisProcess(c net.Conn) bool {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false
	}
	inode, err := tcpInode(remote.Port, local.Port)
	if err != nil || inode == "" {
		return false
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}

// tcpInode finds the socket whose local port is lport and remote port rport
// on 127.0.0.1 in /proc/net/tcp.
func tcpInode(lport, rport int) (string, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	wantL := fmt.Sprintf("0100007F:%04X", lport)
	wantR := fmt.Sprintf("0100007F:%04X", rport)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[1] == wantL && f[2] == wantR {
			return f[9], nil
		}
	}
	return "", errors.New("socket not found")
}
