// Package yuv keeps a guest's picture as the encoders want it, I420, and
// brings it up to date from the BGRx framebuffer one changed rectangle at a
// time, through libyuv (Debian's libyuv-dev: SIMD conversion and box
// scaling, ~20x a plain Go loop). Frames are laid out as GStreamer lays out
// I420 by default, so one Frame's bytes are one GstBuffer.
package yuv

// #cgo LDFLAGS: -lyuv
// #include <libyuv.h>
import "C"

import (
	"fmt"
	"unsafe"
)

// Frame is an I420 picture: a Y plane and quarter-size U and V planes in
// one slice. W and H are even.
type Frame struct {
	W, H    int
	Buf     []byte
	yStride int
	cStride int
	uOff    int
	vOff    int
}

func roundUp4(n int) int { return (n + 3) &^ 3 }

// NewFrame allocates a black frame; w and h are rounded up to even.
func NewFrame(w, h int) *Frame {
	w, h = (w+1)&^1, (h+1)&^1
	f := &Frame{W: w, H: h, yStride: roundUp4(w), cStride: roundUp4(w / 2)}
	f.uOff = f.yStride * h
	f.vOff = f.uOff + f.cStride*h/2
	f.Buf = make([]byte, f.vOff+f.cStride*h/2)
	// Black in BT.601 studio range: Y 16, U and V 128.
	for i := range f.Buf {
		if i < f.uOff {
			f.Buf[i] = 16
		} else {
			f.Buf[i] = 128
		}
	}
	return f
}

// Planes are the frame's Y, U and V planes and their strides, for an
// encoder that takes planes rather than one buffer.
func (f *Frame) Planes() (y, u, v []byte, yStride, cStride int) {
	return f.Buf[:f.uOff], f.Buf[f.uOff:f.vOff], f.Buf[f.vOff:], f.yStride, f.cStride
}

// CopyFrom makes f a copy of src, which must have f's size: a snapshot an
// encoder can read while capture writes the next picture into src.
func (f *Frame) CopyFrom(src *Frame) error {
	if f.W != src.W || f.H != src.H {
		return fmt.Errorf("copying a %dx%d picture into a %dx%d frame", src.W, src.H, f.W, f.H)
	}
	copy(f.Buf, src.Buf)
	return nil
}

func (f *Frame) planes() (y, u, v *C.uint8_t) {
	return (*C.uint8_t)(unsafe.Pointer(&f.Buf[0])), (*C.uint8_t)(unsafe.Pointer(&f.Buf[f.uOff])),
		(*C.uint8_t)(unsafe.Pointer(&f.Buf[f.vOff]))
}

// Update converts the rectangle (x, y, w, h) of a BGRx image of srcW x srcH
// pixels (stride 4*srcW) into the frame. The rectangle is widened to even
// coordinates, since four pixels share one chroma sample.
func (f *Frame) Update(src []byte, srcW, srcH, x, y, w, h int) error {
	return f.update(src, 4, srcW, srcH, x, y, w, h)
}

// Update565 is Update for an RGB565 image (16 bits a pixel, little endian,
// red in the top bits; stride 2*srcW).
func (f *Frame) Update565(src []byte, srcW, srcH, x, y, w, h int) error {
	return f.update(src, 2, srcW, srcH, x, y, w, h)
}

func (f *Frame) update(src []byte, bpp, srcW, srcH, x, y, w, h int) error {
	if srcW > f.W || srcH > f.H || len(src) < srcW*srcH*bpp {
		return fmt.Errorf("a %dx%d picture does not fit a %dx%d frame", srcW, srcH, f.W, f.H)
	}
	x0, y0 := max(x, 0)&^1, max(y, 0)&^1
	x1, y1 := min((x+w+1)&^1, srcW), min((y+h+1)&^1, srcH)
	if x1 <= x0 || y1 <= y0 {
		return nil
	}
	stride := srcW * bpp
	sp := (*C.uint8_t)(unsafe.Pointer(&src[y0*stride+x0*bpp]))
	dy := (*C.uint8_t)(unsafe.Pointer(&f.Buf[y0*f.yStride+x0]))
	du := (*C.uint8_t)(unsafe.Pointer(&f.Buf[f.uOff+y0/2*f.cStride+x0/2]))
	dv := (*C.uint8_t)(unsafe.Pointer(&f.Buf[f.vOff+y0/2*f.cStride+x0/2]))
	var rc C.int
	if bpp == 2 {
		rc = C.RGB565ToI420(sp, C.int(stride), dy, C.int(f.yStride), du, C.int(f.cStride), dv, C.int(f.cStride),
			C.int(x1-x0), C.int(y1-y0))
	} else {
		rc = C.ARGBToI420(sp, C.int(stride), dy, C.int(f.yStride), du, C.int(f.cStride), dv, C.int(f.cStride),
			C.int(x1-x0), C.int(y1-y0))
	}
	if rc != 0 {
		return fmt.Errorf("libyuv refused to convert %dx%d at %d,%d", x1-x0, y1-y0, x0, y0)
	}
	return nil
}

// ScaleFrom fills the frame with src scaled to the frame's size (box
// filter: each thumbnail pixel averages the pixels it covers, so thin text
// stays legible rather than aliasing).
func (f *Frame) ScaleFrom(src *Frame) error {
	sy, su, sv := src.planes()
	dy, du, dv := f.planes()
	if C.I420Scale(sy, C.int(src.yStride), su, C.int(src.cStride), sv, C.int(src.cStride), C.int(src.W), C.int(src.H),
		dy, C.int(f.yStride), du, C.int(f.cStride), dv, C.int(f.cStride), C.int(f.W), C.int(f.H), C.kFilterBox) != 0 {
		return fmt.Errorf("libyuv refused to scale %dx%d to %dx%d", src.W, src.H, f.W, f.H)
	}
	return nil
}

// Fit is the size of a picture of w x h scaled down to fit maxW x maxH with
// its aspect kept, even in both directions; a picture that fits already
// keeps its size.
func Fit(w, h, maxW, maxH int) (int, int) {
	if w <= maxW && h <= maxH {
		return (w + 1) &^ 1, (h + 1) &^ 1
	}
	sw, sh := maxW, h*maxW/w
	if sh > maxH {
		sw, sh = w*maxH/h, maxH
	}
	return max(sw&^1, 2), max(sh&^1, 2)
}
