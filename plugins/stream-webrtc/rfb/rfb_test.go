package rfb_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/locolan/loco/plugins/stream-webrtc/rfb"
	"github.com/locolan/loco/plugins/stream-webrtc/rfb/rfbtest"
)

func TestTarget(t *testing.T) {
	cases := []struct{ in, network, addr string }{
		{"unix:/run/g/vnc.sock", "unix", "/run/g/vnc.sock"},
		{"127.0.0.1:3", "tcp", "127.0.0.1:5903"},
		{"nohost", "", ""},
		{"h:99999", "", ""},
	}
	for _, c := range cases {
		n, a, err := rfb.Target(c.in)
		if (err != nil) != (c.network == "") || n != c.network || a != c.addr {
			t.Errorf("Target(%q) = %q %q %v", c.in, n, a, err)
		}
	}
}

// next waits for one update with a deadline, so a lost update fails the
// test instead of hanging it.
func next(t *testing.T, c *rfb.Capture) rfb.Update {
	t.Helper()
	type res struct {
		u   rfb.Update
		err error
	}
	ch := make(chan res, 1)
	go func() {
		u, err := c.Next()
		if err == nil {
			err = c.Request()
		}
		ch <- res{u, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10 s")
	}
	return rfb.Update{}
}

// fakeCapture is a capture at depth of a fresh 64x48 fake display filled
// with 0x336699; everything is closed when the test ends.
func fakeCapture(t *testing.T, depth rfb.Depth) (context.Context, *rfbtest.Server, *rfb.Capture) {
	t.Helper()
	s, err := rfbtest.NewServer(filepath.Join(t.TempDir(), "vnc.sock"), 64, 48)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Fill(0x336699)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := rfb.DialCapture(ctx, "unix", s.Addr(), depth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, s, c
}

func pixel(c *rfb.Capture, x, y int) uint32 {
	return binary.LittleEndian.Uint32(c.Pixels()[(y*c.Size().W+x)*4:])
}

// TestCaptureFollowsTheDisplay: the whole screen at connect, then only the
// changed rectangle, nothing while the screen is still, and a resize.
func TestCaptureFollowsTheDisplay(t *testing.T) {
	ctx, s, c := fakeCapture(t, rfb.BGRx)
	u := next(t, c)
	if u.Damage != (rfb.Rect{W: 64, H: 48}) || pixel(c, 63, 47) != 0x336699 {
		t.Fatalf("first update %+v, pixel %06x", u, pixel(c, 63, 47))
	}
	sent := s.Updates()
	time.Sleep(200 * time.Millisecond)
	if s.Updates() != sent {
		t.Error("the server sent an update although nothing changed")
	}
	s.Draw(rfb.Rect{X: 10, Y: 20, W: 4, H: 2}, func(int, int) uint32 { return 0xff0000 })
	u = next(t, c)
	if u.Damage != (rfb.Rect{X: 10, Y: 20, W: 4, H: 2}) || pixel(c, 11, 21) != 0xff0000 || pixel(c, 9, 21) != 0x336699 {
		t.Errorf("partial update %+v, pixels %06x %06x", u, pixel(c, 11, 21), pixel(c, 9, 21))
	}
	if err := s.WaitResizeAware(ctx); err != nil {
		t.Fatal(err)
	}
	s.Resize(80, 60)
	u = next(t, c)
	if !u.Resized || c.Size() != (rfb.Size{W: 80, H: 60}) || len(c.Pixels()) != 80*60*4 {
		t.Fatalf("after resize: %+v, size %v", u, c.Size())
	}
	s.Fill(0x00ff00)
	// The full picture after the resize may come before or with the fill.
	for i := 0; pixel(c, 79, 59) != 0x00ff00; i++ {
		if i == 3 {
			t.Fatalf("pixel after resize %06x", pixel(c, 79, 59))
		}
		next(t, c)
	}
}

// TestCaptureAt16Bits: a capture that asks for RGB565 gets two bytes a
// pixel, the fake's colours in 565, and updates of changed rectangles.
func TestCaptureAt16Bits(t *testing.T) {
	_, s, c := fakeCapture(t, rfb.RGB565)
	next(t, c)
	if c.Depth() != rfb.RGB565 || len(c.Pixels()) != 64*48*2 {
		t.Fatalf("depth %v, %d bytes for 64x48", c.Depth(), len(c.Pixels()))
	}
	if got, want := pixel565(c, 63, 47), to565(0x336699); got != want {
		t.Errorf("pixel %04x, want %04x", got, want)
	}
	s.Draw(rfb.Rect{X: 10, Y: 20, W: 4, H: 2}, func(int, int) uint32 { return 0xff0000 })
	u := next(t, c)
	if u.Damage != (rfb.Rect{X: 10, Y: 20, W: 4, H: 2}) || pixel565(c, 11, 21) != 0xf800 || pixel565(c, 9, 21) != to565(0x336699) {
		t.Errorf("partial update %+v, pixels %04x %04x", u, pixel565(c, 11, 21), pixel565(c, 9, 21))
	}
}

func pixel565(c *rfb.Capture, x, y int) uint16 {
	return binary.LittleEndian.Uint16(c.Pixels()[(y*c.Size().W+x)*2:])
}

func to565(rgb uint32) uint16 {
	return uint16(rgb>>19&31)<<11 | uint16(rgb>>10&63)<<5 | uint16(rgb>>3&31)
}

func TestCaptureRefusesANonRFBServer(t *testing.T) {
	_, err := rfb.DialCapture(context.Background(), "unix", filepath.Join(t.TempDir(), "none.sock"), rfb.BGRx)
	if err == nil {
		t.Fatal("dialled a socket that does not exist")
	}
}
