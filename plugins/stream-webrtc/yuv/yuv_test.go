package yuv

import (
	"testing"
)

func bgrx(w, h int, b, g, r byte) []byte {
	px := make([]byte, w*h*4)
	for i := 0; i < len(px); i += 4 {
		px[i], px[i+1], px[i+2] = b, g, r
	}
	return px
}

func (f *Frame) at(x, y int) (byte, byte, byte) {
	return f.Buf[y*f.yStride+x], f.Buf[f.uOff+y/2*f.cStride+x/2], f.Buf[f.vOff+y/2*f.cStride+x/2]
}

func near(a, b byte) bool { return a+2 >= b && b+2 >= a }

// TestUpdateConvertsOnlyTheRectangle: white and red land with BT.601's
// values where the rectangle is, the rest stays black.
func TestUpdateConvertsOnlyTheRectangle(t *testing.T) {
	const w, h = 64, 48
	f := NewFrame(w, h)
	if y, u, v := f.at(10, 10); y != 16 || u != 128 || v != 128 {
		t.Fatalf("new frame is not black: %d %d %d", y, u, v)
	}
	white := bgrx(w, h, 255, 255, 255)
	if err := f.Update(white, w, h, 8, 8, 16, 16); err != nil {
		t.Fatal(err)
	}
	if y, u, v := f.at(10, 10); !near(y, 235) || !near(u, 128) || !near(v, 128) {
		t.Errorf("white became %d %d %d, want 235 128 128", y, u, v)
	}
	if y, _, _ := f.at(30, 30); y != 16 {
		t.Errorf("a pixel outside the rectangle changed: Y %d", y)
	}
	red := bgrx(w, h, 0, 0, 255)
	// An odd rectangle is widened to even coordinates.
	if err := f.Update(red, w, h, 33, 33, 3, 3); err != nil {
		t.Fatal(err)
	}
	if y, u, v := f.at(32, 32); !near(y, 81) || !near(u, 90) || !near(v, 240) {
		t.Errorf("red became %d %d %d, want 81 90 240", y, u, v)
	}
	if err := f.Update(red, w+2, h, 0, 0, 4, 4); err == nil {
		t.Error("a picture wider than the frame was accepted")
	}
}

func TestScaleFromAverages(t *testing.T) {
	src := NewFrame(800, 600)
	px := bgrx(800, 600, 255, 255, 255)
	for y := 0; y < 600; y++ { // every other column black
		for x := 0; x < 800; x += 2 {
			px[(y*800+x)*4], px[(y*800+x)*4+1], px[(y*800+x)*4+2] = 0, 0, 0
		}
	}
	if err := src.Update(px, 800, 600, 0, 0, 800, 600); err != nil {
		t.Fatal(err)
	}
	dst := NewFrame(Fit(800, 600, 400, 300))
	if dst.W != 400 || dst.H != 300 {
		t.Fatalf("thumb %dx%d", dst.W, dst.H)
	}
	if err := dst.ScaleFrom(src); err != nil {
		t.Fatal(err)
	}
	if y, _, _ := dst.at(200, 150); y < 110 || y > 140 {
		t.Errorf("a box-filtered stripe pattern gave Y %d, want about (16+235)/2", y)
	}
}

func TestFit(t *testing.T) {
	cases := []struct{ w, h, mw, mh, ww, wh int }{
		{800, 600, 400, 300, 400, 300},
		{720, 400, 400, 300, 400, 222},
		{640, 480, 400, 300, 400, 300},
		{1024, 768, 400, 300, 400, 300},
		{300, 200, 400, 300, 300, 200},
		{301, 201, 400, 300, 302, 202},
		{400, 1000, 400, 300, 120, 300},
	}
	for _, c := range cases {
		if w, h := Fit(c.w, c.h, c.mw, c.mh); w != c.ww || h != c.wh {
			t.Errorf("Fit(%d,%d in %d,%d) = %d,%d, want %d,%d", c.w, c.h, c.mw, c.mh, w, h, c.ww, c.wh)
		}
	}
}

// BenchmarkUpdate800x600 is the conversion's share of a moving screen.
//
//	go test -run '^$' -bench . ./plugins/stream-webrtc/yuv
func BenchmarkUpdate800x600(b *testing.B) {
	f := NewFrame(800, 600)
	px := bgrx(800, 600, 10, 200, 30)
	for b.Loop() {
		f.Update(px, 800, 600, 0, 0, 800, 600)
	}
}

func BenchmarkScale800x600ToThumb(b *testing.B) {
	src, dst := NewFrame(800, 600), NewFrame(400, 300)
	for b.Loop() {
		dst.ScaleFrom(src)
	}
}

// TestUpdate565MatchesBGRx: a colour given as RGB565 converts to the same
// Y'CbCr as the 32-bit colour it stands for (within the 565 rounding), and
// only inside the rectangle.
func TestUpdate565MatchesBGRx(t *testing.T) {
	const w, h = 32, 16
	cases := []struct {
		name    string
		r, g, b byte
	}{
		{"white", 255, 255, 255},
		{"red", 255, 0, 0},
		{"teal", 0, 128, 128},
		{"grey", 96, 96, 96},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := uint16(c.r>>3)<<11 | uint16(c.g>>2)<<5 | uint16(c.b>>3)
			px := make([]byte, w*h*2)
			for i := 0; i < len(px); i += 2 {
				px[i], px[i+1] = byte(v), byte(v>>8)
			}
			f16, f32 := NewFrame(w, h), NewFrame(w, h)
			if err := f16.Update565(px, w, h, 4, 4, 8, 8); err != nil {
				t.Fatal(err)
			}
			if err := f32.Update(bgrx(w, h, c.b, c.g, c.r), w, h, 4, 4, 8, 8); err != nil {
				t.Fatal(err)
			}
			y1, u1, v1 := f16.at(6, 6)
			y2, u2, v2 := f32.at(6, 6)
			close := func(a, b byte) bool { return a+8 >= b && b+8 >= a }
			if !close(y1, y2) || !close(u1, u2) || !close(v1, v2) {
				t.Errorf("565 gave %d %d %d, 32-bit %d %d %d", y1, u1, v1, y2, u2, v2)
			}
			if y, _, _ := f16.at(20, 2); y != 16 {
				t.Errorf("a pixel outside the rectangle changed: Y %d", y)
			}
		})
	}
	if err := NewFrame(w, h).Update565(make([]byte, w*h), w, h, 0, 0, w, h); err == nil {
		t.Error("a 565 buffer of half the size was accepted")
	}
}
