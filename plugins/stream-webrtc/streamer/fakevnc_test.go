package streamer

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeVNC is a small RFB 3.8 server (no authentication, raw encoding,
// 32 bpp) standing in for QEMU's VNC display in tests: it serves a solid
// colour, answers incremental requests only after a change, as QEMU does,
// and announces resizes to clients that ask for DesktopSize.
type fakeVNC struct {
	t  *testing.T
	ln net.Listener

	mu      sync.Mutex
	w, h    int
	color   uint32
	gen     int // bumped by every change
	clients map[*fakeClient]bool
	conns   int
}

type fakeClient struct {
	mu       sync.Mutex
	conn     net.Conn
	resize   bool // asked for DesktopSize
	pending  bool // an incremental request waits for a change
	sentGen  int
	w, h     int
	changed  chan struct{}
	incrDone bool
}

func newFakeVNC(t *testing.T, path string, w, h int) *fakeVNC {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVNC{t: t, ln: ln, w: w, h: h, color: 0x00336699, clients: map[*fakeClient]bool{}}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *fakeVNC) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.handle(c)
	}
}

// connections counts the RFB clients that connected so far.
func (f *fakeVNC) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// change paints a new colour; clients waiting on an incremental request get it.
func (f *fakeVNC) change(color uint32) {
	f.mu.Lock()
	f.color = color
	f.gen++
	cs := f.snapshot()
	f.mu.Unlock()
	for _, c := range cs {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

// resize changes the display size, as a guest switching video modes does.
func (f *fakeVNC) resize(w, h int) {
	f.mu.Lock()
	f.w, f.h = w, h
	f.gen++
	cs := f.snapshot()
	f.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		if c.resize {
			msg := []byte{0, 0, 0, 1}
			msg = binary.BigEndian.AppendUint16(msg, 0)
			msg = binary.BigEndian.AppendUint16(msg, 0)
			msg = binary.BigEndian.AppendUint16(msg, uint16(w))
			msg = binary.BigEndian.AppendUint16(msg, uint16(h))
			desktopSize := int32(encDesktopSize)
			msg = binary.BigEndian.AppendUint32(msg, uint32(desktopSize))
			c.conn.Write(msg)
		}
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

// waitResizeAware waits until some client has asked for DesktopSize: a
// resize before that is, as with QEMU, not announced to anyone.
func (f *fakeVNC) waitResizeAware(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		cs := f.snapshot()
		f.mu.Unlock()
		for _, c := range cs {
			c.mu.Lock()
			aware := c.resize
			c.mu.Unlock()
			if aware {
				return
			}
		}
	}
	t.Fatal("no client asked for DesktopSize")
}

func (f *fakeVNC) snapshot() []*fakeClient {
	var cs []*fakeClient
	for c := range f.clients {
		cs = append(cs, c)
	}
	return cs
}

func (f *fakeVNC) handle(conn net.Conn) {
	defer conn.Close()
	c := &fakeClient{conn: conn, changed: make(chan struct{}, 1)}
	f.mu.Lock()
	f.clients[c] = true
	f.conns++
	w, h := f.w, f.h
	f.mu.Unlock()
	defer func() { f.mu.Lock(); delete(f.clients, c); f.mu.Unlock() }()
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
	init := binary.BigEndian.AppendUint16(nil, uint16(w))
	init = binary.BigEndian.AppendUint16(init, uint16(h))
	// 32 bpp, depth 24, little endian, true colour, 255/255/255, shifts 16/8/0.
	init = append(init, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	init = binary.BigEndian.AppendUint32(init, 4)
	init = append(init, "fake"...)
	c.w, c.h = w, h
	conn.Write(init)
	for {
		t, err := r.ReadByte()
		if err != nil {
			return
		}
		switch t {
		case 0: // SetPixelFormat
			r.Discard(19)
		case 2: // SetEncodings
			var hd [3]byte
			io.ReadFull(r, hd[:])
			n := int(binary.BigEndian.Uint16(hd[1:]))
			for i := 0; i < n; i++ {
				var e [4]byte
				io.ReadFull(r, e[:])
				if int32(binary.BigEndian.Uint32(e[:])) == encDesktopSize {
					c.mu.Lock()
					c.resize = true
					c.mu.Unlock()
				}
			}
		case 3: // FramebufferUpdateRequest
			var req [9]byte
			if _, err := io.ReadFull(r, req[:]); err != nil {
				return
			}
			incremental := req[0] != 0
			go f.answer(c, incremental)
		case 4: // KeyEvent
			r.Discard(7)
		case 5: // PointerEvent
			r.Discard(5)
		case 6: // ClientCutText
			var hd [7]byte
			io.ReadFull(r, hd[:])
			r.Discard(int(binary.BigEndian.Uint32(hd[3:])))
		default:
			f.t.Logf("fake VNC: unknown client message %d", t)
			return
		}
	}
}

// answer sends the whole screen: at once for a full request, after the
// next change for an incremental one (QEMU answers those only when
// something changed).
func (f *fakeVNC) answer(c *fakeClient, incremental bool) {
	f.mu.Lock()
	gen := f.gen
	f.mu.Unlock()
	c.mu.Lock()
	sent := c.sentGen
	c.mu.Unlock()
	if incremental && gen == sent && c.incrDone {
		<-c.changed
	}
	f.mu.Lock()
	w, h, color, gen := f.w, f.h, f.color, f.gen
	f.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sentGen, c.incrDone = gen, true
	// A client that did not ask for DesktopSize keeps its size: send only
	// what fits, as QEMU does.
	w, h = min(w, c.w), min(h, c.h)
	msg := []byte{0, 0, 0, 1}
	msg = binary.BigEndian.AppendUint16(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, uint16(w))
	msg = binary.BigEndian.AppendUint16(msg, uint16(h))
	msg = binary.BigEndian.AppendUint32(msg, encRaw)
	px := binary.LittleEndian.AppendUint32(nil, color)
	for i := 0; i < w*h; i++ {
		msg = append(msg, px...)
	}
	c.conn.Write(msg)
}
