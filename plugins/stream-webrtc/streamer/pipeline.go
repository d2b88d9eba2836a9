package streamer

import "fmt"

// vp8Pipeline is a VP8 variant's encoder in gst-launch syntax (H.264
// is coded by package x264, in this process): I420
// frames of w x h pushed into appsrc "in" (package yuv lays them out as
// GStreamer does), encoded frames pulled from appsink "out".
//
// Frames come only when the guest's screen changed (and once a second on a
// still one), yet the caps keep the variant's frame rate: marked
// variable-rate (framerate=0/1), x264 holds each frame back until the next
// one arrives, a whole frame interval of latency (TestEncoderHoldsNoFrame).
// There are no periodic key frames: a new viewer and a PLI or FIR each
// force one, and a still screen would otherwise pay for a full picture
// every few seconds.
func vp8Pipeline(w, h, fps, bitrateKbps int) string {
	return fmt.Sprintf("appsrc name=in is-live=true do-timestamp=true format=time max-buffers=2 leaky-type=downstream "+
		"caps=video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! %s ! appsink name=out sync=false async=false max-buffers=8",
		w, h, fps, vp8Element(bitrateKbps))
}

// noPeriodicKey is the key-frame interval given to the encoders: an hour
// of frames at 60 fps, in effect never.
const noPeriodicKey = 60 * 3600

// vp8Element is the encoder element and its output caps.
func vp8Element(bitrateKbps int) string {
	return fmt.Sprintf("vp8enc name=enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=%d keyframe-max-dist=%d "+
		"lag-in-frames=0 error-resilient=default threads=1 ! video/x-vp8", bitrateKbps*1000, noPeriodicKey)
}

// audioPipeline encodes the guest's PCM, pushed into appsrc "in", to Opus in
// 20 ms packets.
func audioPipeline() string {
	return fmt.Sprintf("appsrc name=in is-live=true do-timestamp=true format=time max-bytes=%d "+
		"caps=audio/x-raw,format=S16LE,rate=%d,channels=%d,layout=interleaved ! "+
		"audioconvert ! opusenc bitrate=96000 frame-size=20 ! appsink name=out sync=false max-buffers=50",
		audioRate*audioFrame/2, audioRate, audioChannels)
}

// requiredElements are the GStreamer elements the pipelines above use, with
// the Debian package that has each.
func requiredElements(c config) map[string]string {
	m := map[string]string{"appsink": "gstreamer1.0-plugins-base", "appsrc": "gstreamer1.0-plugins-base"}
	if c.codec == "vp8" {
		m["vp8enc"] = "gstreamer1.0-plugins-good"
	}
	if c.audio {
		m["audioconvert"] = "gstreamer1.0-plugins-base"
		m["opusenc"] = "gstreamer1.0-plugins-base"
	}
	return m
}
