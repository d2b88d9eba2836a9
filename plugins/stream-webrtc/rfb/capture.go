package rfb

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// Capture is a connection that receives the guest's pixels into a
// framebuffer. QEMU sends an update only for an outstanding request, and
// then only once something changed: with a request always outstanding a
// change comes on QEMU's next look at the screen (every 30 ms while
// anything watches), and nothing at all while the screen is still. A
// caller that wants fewer frames asks later (Request); QEMU gathers the
// changes meanwhile into the next update.
type Capture struct {
	conn    net.Conn
	r       *bufio.Reader
	size    Size
	depth   Depth
	fb      []byte // depth.Bytes()*size.W bytes a row
	resized bool   // the last update was a resize: ask for the whole screen
}

// Depth is the pixel format a capture asks the display for.
type Depth int

const (
	// BGRx is 32 bits a pixel, 8 a channel: B, G, R, x in memory, what
	// libyuv calls ARGB and GStreamer BGRx.
	BGRx Depth = iota
	// RGB565 is 16 bits a pixel, little endian, red in the top 5 bits and
	// blue in the bottom 5: half the bytes to copy, for pictures that are
	// scaled down anyway (thumbnails).
	RGB565
)

// Bytes is the size of one pixel.
func (d Depth) Bytes() int {
	if d == RGB565 {
		return 2
	}
	return 4
}

// Update is what one FramebufferUpdate changed.
type Update struct {
	Damage  Rect // the bounding box of the changed rectangles
	Rects   int  // how many rectangles the server sent
	Resized bool // the display changed size; the whole framebuffer is new
}

// DialCapture connects, asks for pixels of depth in the raw encoding and
// DesktopSize, and requests the whole screen once. The depth is fixed for
// the connection: RFB cannot tell which format an update already on its
// way was sent in, so a caller that wants another depth dials again.
func DialCapture(ctx context.Context, network, addr string, depth Depth) (*Capture, error) {
	conn, r, s, _, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &Capture{conn: conn, r: r, depth: depth}
	c.resize(s)
	// SetPixelFormat, little endian, true colour. BGRx: 32 bpp, depth 24,
	// 8 bits a channel, red at bit 16, green 8, blue 0. RGB565: 16 bpp,
	// depth 16, 31/63/31, red at bit 11, green 5, blue 0.
	pf := []byte{0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}
	if depth == RGB565 {
		pf = []byte{0, 0, 0, 0, 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0}
	}
	if _, err := conn.Write(pf); err != nil {
		conn.Close()
		return nil, fmt.Errorf("setting the pixel format: %w", err)
	}
	if err := setEncodings(conn, EncRaw, EncDesktopSize); err != nil {
		conn.Close()
		return nil, fmt.Errorf("setting encodings: %w", err)
	}
	if err := c.request(false); err != nil {
		conn.Close()
		return nil, err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return c, nil
}

func (c *Capture) resize(s Size) {
	c.size = s
	if n := s.W * s.H * c.depth.Bytes(); cap(c.fb) >= n {
		c.fb = c.fb[:n]
		clear(c.fb)
	} else {
		c.fb = make([]byte, n)
	}
}

// Size is the framebuffer's size now.
func (c *Capture) Size() Size { return c.size }

// Pixels is the framebuffer (Depth(), stride Depth().Bytes()*Size().W). It
// is valid until the next call of Next and is written only by Next.
func (c *Capture) Pixels() []byte { return c.fb }

// Depth is the pixel format of Pixels.
func (c *Capture) Depth() Depth { return c.depth }

// Close ends the connection; a Next blocked in a read returns.
func (c *Capture) Close() error { return c.conn.Close() }

func (c *Capture) request(incremental bool) error {
	msg := []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if incremental {
		msg[1] = 1
	}
	binary.BigEndian.PutUint16(msg[6:], uint16(c.size.W))
	binary.BigEndian.PutUint16(msg[8:], uint16(c.size.H))
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("asking the guest's display for an update: %w", err)
	}
	return nil
}

// Request asks for the next update. Call it once after each Next.
func (c *Capture) Request() error { return c.request(!c.resized) }

// Next waits for the next FramebufferUpdate and applies it to the
// framebuffer. The update after it must be asked for with Request.
func (c *Capture) Next() (Update, error) {
	for {
		t, err := c.r.ReadByte()
		if err != nil {
			return Update{}, fmt.Errorf("reading from the guest's VNC display: %w", err)
		}
		if t == msgFBUpdate {
			break
		}
		if err := skipMessage(c.r, t); err != nil {
			return Update{}, err
		}
	}
	var h struct {
		_ uint8
		N uint16
	}
	if err := binary.Read(c.r, binary.BigEndian, &h); err != nil {
		return Update{}, err
	}
	var u Update
	for i := 0; i < int(h.N); i++ {
		var rh rectHeader
		if err := binary.Read(c.r, binary.BigEndian, &rh); err != nil {
			return Update{}, err
		}
		r := Rect{int(rh.X), int(rh.Y), int(rh.W), int(rh.H)}
		switch rh.Enc {
		case EncDesktopSize:
			c.resize(Size{r.W, r.H})
			u.Resized, u.Damage = true, Rect{0, 0, r.W, r.H}
		case EncRaw:
			if r.X+r.W > c.size.W || r.Y+r.H > c.size.H {
				return Update{}, fmt.Errorf("the display sent rectangle %+v outside its %v framebuffer", r, c.size)
			}
			bpp := c.depth.Bytes()
			stride := c.size.W * bpp
			if r.X == 0 && r.W == c.size.W {
				// Whole rows are contiguous in the framebuffer: one read,
				// which bufio hands straight to the socket once its own
				// buffer is drained (no second copy).
				off := r.Y * stride
				if _, err := io.ReadFull(c.r, c.fb[off:off+r.H*stride]); err != nil {
					return Update{}, fmt.Errorf("reading pixels: %w", err)
				}
			} else {
				for y := r.Y; y < r.Y+r.H; y++ {
					off := y*stride + r.X*bpp
					if _, err := io.ReadFull(c.r, c.fb[off:off+r.W*bpp]); err != nil {
						return Update{}, fmt.Errorf("reading pixels: %w", err)
					}
				}
			}
			u.Damage = u.Damage.Union(r)
			u.Rects++
		default:
			return Update{}, fmt.Errorf("the display sent rectangle encoding %d, which was not asked for", rh.Enc)
		}
	}
	// After a resize the next request is a full one: the old picture is gone.
	c.resized = u.Resized
	return u, nil
}
