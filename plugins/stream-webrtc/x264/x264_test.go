package x264

import (
	"bytes"
	"testing"
	"time"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/plugins/stream-webrtc/yuv"
)

// nalTypes lists the NAL unit types of an Annex B access unit.
func nalTypes(au []byte) []int {
	var out []int
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			out = append(out, int(au[i+3]&0x1f))
			i += 3
		}
	}
	return out
}

func has(types []int, t int) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// picture is a frame with a bright square at x on black.
func picture(w, h, x int) *yuv.Frame {
	f := yuv.NewFrame(w, h)
	y, _, _, ys, _ := f.Planes()
	for r := 40; r < 120; r++ {
		for c := x; c < x+80 && c < w; c++ {
			y[r*ys+c] = 235
		}
	}
	return f
}

func TestEncodeKeysChangesAndSkips(t *testing.T) {
	e, err := Open(Config{Width: 320, Height: 240, FPS: 30, MaxKbps: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	first, key, err := e.Encode(picture(320, 240, 20), Frame{})
	if err != nil {
		t.Fatal(err)
	}
	if types := nalTypes(first); !key || !has(types, 7) || !has(types, 8) || !has(types, 5) {
		t.Fatalf("first frame: key %v, NAL types %v; want a key frame with SPS (7), PPS (8) and IDR (5)", key, types)
	}
	moved, key, err := e.Encode(picture(320, 240, 60), Frame{})
	if err != nil {
		t.Fatal(err)
	}
	if types := nalTypes(moved); key || !has(types, 1) || has(types, 5) {
		t.Fatalf("changed frame: key %v, NAL types %v; want a P slice (1)", key, types)
	}
	same := picture(320, 240, 60)
	refine, _, err := e.Encode(same, Frame{})
	if err != nil {
		t.Fatal(err)
	}
	skip, key, err := e.Encode(same, Frame{Skip: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bytes: key %d, changed %d, repeat %d, skip repeat %d", len(first), len(moved), len(refine), len(skip))
	if key || len(skip) > 64 {
		t.Fatalf("a skipped repeat is %d bytes (key %v); want a P frame of a few bytes", len(skip), key)
	}
	forced, key, err := e.Encode(same, Frame{Key: true, Skip: true})
	if err != nil {
		t.Fatal(err)
	}
	if types := nalTypes(forced); !key || !has(types, 7) || !has(types, 5) {
		t.Fatalf("forced key frame: key %v, NAL types %v", key, types)
	}
	if _, _, err := e.Encode(picture(160, 120, 0), Frame{}); err == nil {
		t.Fatal("a picture of the wrong size was encoded")
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{{Width: 321, Height: 240, FPS: 30, MaxKbps: 100}, {Width: 0, Height: 240, FPS: 30, MaxKbps: 100},
		{Width: 320, Height: 240, FPS: 0, MaxKbps: 100}, {Width: 320, Height: 240, FPS: 30}} {
		if e, err := Open(c); err == nil {
			e.Close()
			t.Errorf("Open(%+v) succeeded", c)
		}
	}
}

// TestDecodes runs the stream through a real H.264 decoder (openh264, in
// GStreamer): the key frame, a change and skipped repeats decode, and the
// last picture shows the square where it moved to.
func TestDecodes(t *testing.T) {
	if err := gst.Init(); err != nil {
		t.Fatal(err)
	}
	const w, h = 320, 240
	pl, err := gst.Launch("appsrc name=in is-live=true do-timestamp=true format=time caps=video/x-h264,stream-format=byte-stream,alignment=au " +
		"! h264parse ! openh264dec ! video/x-raw,format=I420 ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if err := pl.Start(); err != nil {
		t.Fatal(err)
	}
	e, err := Open(Config{Width: w, Height: h, FPS: 30, MaxKbps: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	frames := []struct {
		x    int
		skip bool
	}{{20, false}, {120, false}, {120, false}, {120, true}, {120, true}}
	var last *gst.Sample
	for i, f := range frames {
		au, _, err := e.Encode(picture(w, h, f.x), Frame{Skip: f.skip})
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.Push(au); err != nil {
			t.Fatal(err)
		}
		s, err := pl.Pull(10 * time.Second)
		if err != nil || s == nil {
			t.Fatalf("frame %d: the decoder gave nothing (%v)", i, err)
		}
		last = s
	}
	// The decoded Y plane: the square (rows 40-119, columns 120-199) is
	// bright, the place it left (columns 20-99) is dark.
	y := last.Data[:w*h]
	at := func(r, c int) byte { return y[r*w+c] }
	if at(80, 160) < 200 || at(80, 60) > 40 {
		t.Fatalf("decoded picture: Y at the square %d, where it was %d; want bright and dark", at(80, 160), at(80, 60))
	}
	if bytes.Count(y, []byte{0}) == len(y) {
		t.Fatal("decoded picture is empty")
	}
}
