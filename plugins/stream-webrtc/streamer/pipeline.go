package streamer

import "fmt"

// encodePipeline is one variant's encoder in gst-launch syntax: I420
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
func encodePipeline(codec string, w, h, fps, bitrateKbps int) string {
	return fmt.Sprintf("appsrc name=in is-live=true do-timestamp=true format=time max-buffers=2 leaky-type=downstream "+
		"caps=video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! %s ! appsink name=out sync=false async=false max-buffers=8",
		w, h, fps, encoderElement(codec, bitrateKbps))
}

// noPeriodicKey is the key-frame interval given to the encoders: an hour
// of frames at 60 fps, in effect never.
const noPeriodicKey = 60 * 3600

// encoderElement is the encoder element and its output caps.
func encoderElement(codec string, bitrateKbps int) string {
	switch codec {
	case "vp8":
		return fmt.Sprintf("vp8enc name=enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=%d keyframe-max-dist=%d "+
			"lag-in-frames=0 error-resilient=default threads=1 ! video/x-vp8", bitrateKbps*1000, noPeriodicKey)
	default:
		// Constrained baseline (no B-frames, CAVLC) is what every WebRTC
		// H.264 decoder takes; pass=qual keeps a static screen at a few
		// kbit/s while bitrate caps motion. One thread per encoder: nine
		// guests share two cores, and threads would only add overhead.
		// GStreamer's own defaults for trellis (on) and ref (3) override
		// the ultrafast preset's; trellis alone was a quarter of the
		// plugin's CPU on a moving screen (perf).
		return fmt.Sprintf("x264enc name=enc tune=zerolatency speed-preset=ultrafast pass=qual bitrate=%d vbv-buf-capacity=500 "+
			"trellis=false ref=1 key-int-max=%d threads=1 ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au",
			bitrateKbps, noPeriodicKey)
	}
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
	} else {
		m["x264enc"] = "gstreamer1.0-plugins-ugly"
	}
	if c.audio {
		m["audioconvert"] = "gstreamer1.0-plugins-base"
		m["opusenc"] = "gstreamer1.0-plugins-base"
	}
	return m
}
