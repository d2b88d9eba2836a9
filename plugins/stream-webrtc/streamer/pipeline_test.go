package streamer

import (
	"testing"
	"time"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/plugins/stream-webrtc/x264"
	"github.com/locolan/loco/plugins/stream-webrtc/yuv"
)

// TestEncoderHoldsNoFrame pushes a run of identical I420 frames and then a
// different one through the real encoder (libx264 in process, VP8 in
// GStreamer): the frame out right after the change must be the change
// (much larger than a repeat), not a repeat held back by the encoder.
func TestEncoderHoldsNoFrame(t *testing.T) {
	if err := gst.Init(); err != nil {
		t.Fatal(err)
	}
	const w, h = 320, 240
	black, white := yuv.NewFrame(w, h), yuv.NewFrame(w, h)
	px := make([]byte, w*h*4)
	for i := range px {
		px[i] = 0xff
	}
	if err := white.Update(px, w, h, 0, 0, w, h); err != nil {
		t.Fatal(err)
	}
	for _, codec := range []string{"h264", "vp8"} {
		t.Run(codec, func(t *testing.T) {
			c := config{codec: codec, framerate: defaultFramerate, bitrateKbps: defaultBitrate}
			for name, pkg := range requiredElements(c) {
				if !gst.HasElement(name) {
					t.Fatalf("GStreamer element %s is missing (Debian package %s)", name, pkg)
				}
			}
			var push func(frame *yuv.Frame) int
			if codec == "h264" {
				x, err := x264.Open(x264.Config{Width: w, Height: h, FPS: c.framerate, MaxKbps: c.bitrateKbps})
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				push = func(frame *yuv.Frame) int {
					t.Helper()
					data, _, err := x.Encode(frame, x264.Frame{})
					if err != nil {
						t.Fatalf("no encoded frame for the frame just pushed: %v", err)
					}
					return len(data)
				}
			} else {
				pl, err := gst.Launch(vp8Pipeline(w, h, c.framerate, c.bitrateKbps))
				if err != nil {
					t.Fatal(err)
				}
				defer pl.Close()
				if err := pl.Start(); err != nil {
					t.Fatal(err)
				}
				push = func(frame *yuv.Frame) int {
					t.Helper()
					if err := pl.Push(frame.Buf); err != nil {
						t.Fatal(err)
					}
					s, err := pl.Pull(10 * time.Second)
					if err != nil || s == nil {
						t.Fatalf("no encoded frame for the frame just pushed (err %v): the encoder holds frames back", err)
					}
					return len(s.Data)
				}
			}
			var repeat int
			for i := 0; i < 8; i++ {
				repeat = push(black)
			}
			if changed := push(white); changed < 4*repeat {
				t.Errorf("the frame out after the change has %d bytes, a repeat %d: the change was held back", changed, repeat)
			}
		})
	}
}
