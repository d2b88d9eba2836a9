// Package rfbtest is a small RFB 3.8 server standing in for QEMU's VNC
// display in tests and benchmarks of stream plugins: no authentication, raw
// encoding, 32 bpp BGRx. Like QEMU it answers an incremental update request
// only once something changed, sends only the changed rectangle, and
// announces resizes to clients that asked for DesktopSize.
package rfbtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/locolan/loco/plugins/stream-webrtc/rfb"
)

// Server is a fake display listening on a unix socket.
type Server struct {
	ln net.Listener

	mu      sync.Mutex
	w, h    int
	fb      []byte // BGRx
	clients map[*client]bool
	conns   int
	updates uint64 // FramebufferUpdates sent, to all clients
}

type client struct {
	conn    net.Conn
	wmu     sync.Mutex
	resize  bool     // asked for DesktopSize
	dirty   rfb.Rect // changed since the last update sent
	resized bool     // a DesktopSize is due
	pending bool     // an incremental request waits for a change
	w, h    int      // the size this client knows
	rgb565  bool     // asked for 16 bpp (red 11, green 5, blue 0), as loco's thumbnail capture does
}

// NewServer listens on path with a w x h black screen.
func NewServer(path string, w, h int) (*Server, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, w: w, h: h, fb: make([]byte, w*h*4), clients: map[*client]bool{}}
	go s.serve()
	return s, nil
}

// Addr is the socket's path.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening and drops every client.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.clients {
		c.conn.Close()
	}
	s.mu.Unlock()
	return err
}

// Connections counts the clients that connected so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// OpenDepths is the bits per pixel each connected client asked for (32
// unless it asked for 16).
func (s *Server) OpenDepths() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for c := range s.clients {
		c.wmu.Lock()
		bpp := 32
		if c.rgb565 {
			bpp = 16
		}
		c.wmu.Unlock()
		out = append(out, bpp)
	}
	return out
}

// Updates counts the FramebufferUpdates sent so far.
func (s *Server) Updates() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

// Size is the screen's size.
func (s *Server) Size() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w, s.h
}

// Fill paints the whole screen one colour (0xRRGGBB).
func (s *Server) Fill(color uint32) {
	s.Draw(rfb.Rect{W: 1 << 16, H: 1 << 16}, func(x, y int) uint32 { return color })
}

// Draw sets every pixel of r (clipped to the screen) to px(x, y) and marks
// r changed for every client.
func (s *Server) Draw(r rfb.Rect, px func(x, y int) uint32) {
	s.mu.Lock()
	r = clip(r, s.w, s.h)
	for y := r.Y; y < r.Y+r.H; y++ {
		row := s.fb[(y*s.w+r.X)*4:]
		for x := 0; x < r.W; x++ {
			binary.LittleEndian.PutUint32(row[x*4:], px(r.X+x, y))
		}
	}
	s.markLocked(r)
	s.mu.Unlock()
}

// Blit copies src, a BGRx picture of r's size, into r (which must lie
// within the screen) and marks r changed.
func (s *Server) Blit(r rfb.Rect, src []byte) {
	s.mu.Lock()
	if clip(r, s.w, s.h) == r {
		for y := 0; y < r.H; y++ {
			copy(s.fb[((r.Y+y)*s.w+r.X)*4:], src[y*r.W*4:(y+1)*r.W*4])
		}
		s.markLocked(r)
	}
	s.mu.Unlock()
}

func clip(r rfb.Rect, w, h int) rfb.Rect {
	x0, y0 := max(r.X, 0), max(r.Y, 0)
	x1, y1 := min(r.X+r.W, w), min(r.Y+r.H, h)
	if x1 <= x0 || y1 <= y0 {
		return rfb.Rect{}
	}
	return rfb.Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

func (s *Server) markLocked(r rfb.Rect) {
	if r.Empty() {
		return
	}
	for c := range s.clients {
		c.dirty = c.dirty.Union(r)
		if c.pending {
			c.pending = false
			go s.send(c, false)
		}
	}
}

// Resize changes the screen's size (black) and tells the clients that
// asked for DesktopSize.
func (s *Server) Resize(w, h int) {
	s.mu.Lock()
	s.w, s.h, s.fb = w, h, make([]byte, w*h*4)
	for c := range s.clients {
		if c.resize {
			c.resized = true
			if c.pending {
				c.pending = false
				go s.send(c, false)
			}
		}
	}
	s.mu.Unlock()
}

// WaitResizeAware waits until some client has asked for DesktopSize: a
// resize before that is, as with QEMU, announced to nobody.
func (s *Server) WaitResizeAware(ctx context.Context) error {
	for {
		s.mu.Lock()
		for c := range s.clients {
			if c.resize {
				s.mu.Unlock()
				return nil
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return errors.New("no client asked for DesktopSize")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *Server) handle(conn net.Conn) {
	defer conn.Close()
	s.mu.Lock()
	c := &client{conn: conn, w: s.w, h: s.h}
	s.clients[c] = true
	s.conns++
	s.mu.Unlock()
	defer func() { s.mu.Lock(); delete(s.clients, c); s.mu.Unlock() }()
	r := bufio.NewReader(conn)
	io.WriteString(conn, "RFB 003.008\n")
	var ver [12]byte
	if _, err := io.ReadFull(r, ver[:]); err != nil {
		return
	}
	conn.Write([]byte{1, 1}) // one security type: none
	if _, err := r.ReadByte(); err != nil {
		return
	}
	conn.Write([]byte{0, 0, 0, 0})          // security result: OK
	if _, err := r.ReadByte(); err != nil { // ClientInit
		return
	}
	init := binary.BigEndian.AppendUint16(nil, uint16(c.w))
	init = binary.BigEndian.AppendUint16(init, uint16(c.h))
	// 32 bpp, depth 24, little endian, true colour, 255/255/255, shifts 16/8/0.
	init = append(init, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	init = binary.BigEndian.AppendUint32(init, 4)
	init = append(init, "fake"...)
	conn.Write(init)
	for {
		t, err := r.ReadByte()
		if err != nil {
			return
		}
		switch t {
		case 0: // SetPixelFormat: 32 bpp BGRx, or 16 bpp RGB565
			var pf [19]byte
			if _, err := io.ReadFull(r, pf[:]); err != nil {
				return
			}
			c.wmu.Lock()
			c.rgb565 = pf[3] == 16
			c.wmu.Unlock()
		case 2: // SetEncodings
			var hd [3]byte
			io.ReadFull(r, hd[:])
			n := int(binary.BigEndian.Uint16(hd[1:]))
			for i := 0; i < n; i++ {
				var e [4]byte
				io.ReadFull(r, e[:])
				if int32(binary.BigEndian.Uint32(e[:])) == rfb.EncDesktopSize {
					s.mu.Lock()
					c.resize = true
					s.mu.Unlock()
				}
			}
		case 3: // FramebufferUpdateRequest
			var req [9]byte
			if _, err := io.ReadFull(r, req[:]); err != nil {
				return
			}
			incremental := req[0] != 0
			s.mu.Lock()
			if incremental && c.dirty.Empty() && !c.resized {
				c.pending = true
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			go s.send(c, !incremental)
		case 4: // KeyEvent
			r.Discard(7)
		case 5: // PointerEvent
			r.Discard(5)
		case 6: // ClientCutText
			var hd [7]byte
			io.ReadFull(r, hd[:])
			r.Discard(int(binary.BigEndian.Uint32(hd[3:])))
		default:
			return
		}
	}
}

// send writes one FramebufferUpdate: a DesktopSize if one is due, else the
// client's changed rectangle (the whole screen if full).
func (s *Server) send(c *client, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates++
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.resized {
		c.resized, c.w, c.h = false, s.w, s.h
		c.dirty = rfb.Rect{W: s.w, H: s.h}
		c.conn.Write(rectHeader(1, rfb.Rect{W: s.w, H: s.h}, rfb.EncDesktopSize))
		return
	}
	r := c.dirty
	if full {
		r = rfb.Rect{W: s.w, H: s.h}
	}
	// A client that did not ask for DesktopSize keeps its size.
	r = clip(r, min(s.w, c.w), min(s.h, c.h))
	c.dirty = rfb.Rect{}
	hdr := rectHeader(1, r, rfb.EncRaw)
	if c.rgb565 {
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				px := s.fb[(y*s.w+x)*4:]
				v := uint16(px[2]>>3)<<11 | uint16(px[1]>>2)<<5 | uint16(px[0]>>3)
				hdr = append(hdr, byte(v), byte(v>>8))
			}
		}
		c.conn.Write(hdr)
		return
	}
	if r.X == 0 && r.W == s.w {
		// Whole rows are one slice of the framebuffer: written from it
		// under the lock, with no copy.
		bufs := net.Buffers{hdr, s.fb[r.Y*s.w*4 : (r.Y+r.H)*s.w*4]}
		bufs.WriteTo(c.conn)
		return
	}
	for y := r.Y; y < r.Y+r.H; y++ {
		off := (y*s.w + r.X) * 4
		hdr = append(hdr, s.fb[off:off+r.W*4]...)
	}
	c.conn.Write(hdr)
}

func rectHeader(n int, r rfb.Rect, enc int32) []byte {
	msg := []byte{0, 0}
	msg = binary.BigEndian.AppendUint16(msg, uint16(n))
	msg = binary.BigEndian.AppendUint16(msg, uint16(r.X))
	msg = binary.BigEndian.AppendUint16(msg, uint16(r.Y))
	msg = binary.BigEndian.AppendUint16(msg, uint16(r.W))
	msg = binary.BigEndian.AppendUint16(msg, uint16(r.H))
	return binary.BigEndian.AppendUint32(msg, uint32(enc))
}

// Console draws text-like content the way a guest's console looks: 8x16
// cells of glyph-shaped pixels on black. Each Step redraws every cell with
// new glyphs (a whole screen of new text, like the test guest's motion key)
// or, with one line, only the top row of cells (a ticking status line).
// Glyph rows are pre-rendered, so drawing costs a benchmark's process
// little next to what it measures.
type Console struct {
	s      *Server
	rng    *rand.Rand
	glyphs [64][16][32]byte // BGRx rows of 8 pixels
	buf    []byte
}

// NewConsole prepares glyphs; it draws nothing yet.
func NewConsole(s *Server, seed uint64) *Console {
	c := &Console{s: s, rng: rand.New(rand.NewPCG(seed, 7))}
	for g := range c.glyphs {
		for row := range c.glyphs[g] {
			bits := uint8(c.rng.Uint32()) & 0x7e
			for x := 0; x < 8; x++ {
				if bits&(0x80>>x) != 0 {
					binary.LittleEndian.PutUint32(c.glyphs[g][row][x*4:], 0xc0c0c0)
				}
			}
		}
	}
	return c
}

// Step redraws rows of cells: all of them, or only the first if line.
func (c *Console) Step(line bool) {
	w, h := c.s.Size()
	rows, cols := h/16, w/8
	if line {
		rows = 1
	}
	r := rfb.Rect{W: cols * 8, H: rows * 16}
	if n := r.W * r.H * 4; len(c.buf) != n {
		c.buf = make([]byte, n)
	}
	stride := r.W * 4
	for cy := 0; cy < rows; cy++ {
		for cx := 0; cx < cols; cx++ {
			g := &c.glyphs[c.rng.IntN(len(c.glyphs))]
			for y := 0; y < 16; y++ {
				copy(c.buf[(cy*16+y)*stride+cx*32:], g[y][:])
			}
		}
	}
	c.s.Blit(r, c.buf)
}

// Animate steps the console fps times a second until ctx ends.
func (c *Console) Animate(ctx context.Context, fps int, line bool) {
	t := time.NewTicker(time.Second / time.Duration(fps))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Step(line)
		}
	}
}
