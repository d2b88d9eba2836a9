package streamer

import "fmt"

// videoPipeline is one guest's capture and encoder, in gst-launch syntax:
// two chains that the plugin joins with a heartbeat (guest.heartbeat,
// gst.Pipeline.Relay).
//
//	rfbsrc (only emits when the screen changes) ► appsink "raw"
//	          │ a new frame: pushed on at once; none for 1/framerate: the last one again
//	          ▼
//	appsrc "in" ► videoconvert ► x264 (or vp8) ► appsink "out" ► pion track, fanned out to viewers
//
// The heartbeat gives a static screen a steady frame rate (viewers see
// fps, key frames can be forced at any time) without delaying a change: a
// new frame goes to the encoder the moment it is captured. (A compositor
// driven by a live black source did the same inside GStreamer, but held
// each change until its next output tick and its aggregation deadline.)
// rfbsrc cannot follow a resolution change; the plugin rebuilds the
// pipeline at the new size instead. rfbsrc starts with a full update
// request and is switched to incremental ones after the first frame
// (package gst), or an idle screen would never show up.
func videoPipeline(c config, rfbPort int, s size) string {
	// I420 needs even dimensions: the capture is padded to them.
	w, h := (s.W+1)&^1, (s.H+1)&^1
	raw := fmt.Sprintf("video/x-raw,format=BGRx,width=%d,height=%d", w, h)
	// videoscale with add-borders pads an odd-sized capture (it never
	// scales here: the sizes differ by at most one pixel).
	return fmt.Sprintf("rfbsrc name=vnc host=127.0.0.1 port=%d view-only=true shared=true incremental=false ! "+
		"videoconvert ! videoscale add-borders=true ! %s ! appsink name=raw sync=false async=false max-buffers=1 drop=true %s",
		rfbPort, raw, encodeChain(c, raw))
}

// encoder is the encoder element and its output caps.
func encoder(c config) string {
	// A key frame every 4 s bounds how long a viewer that lost one waits if
	// its PLI is lost too; PLIs and new viewers get one at once anyway.
	gop := c.framerate * 4
	var enc string
	switch c.codec {
	case "vp8":
		enc = fmt.Sprintf("vp8enc name=enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=%d keyframe-max-dist=%d "+
			"lag-in-frames=0 error-resilient=default threads=1 ! video/x-vp8", c.bitrateKbps*1000, gop)
	default:
		// Constrained baseline (no B-frames, CAVLC) is what every WebRTC
		// H.264 decoder takes; pass=qual keeps a static screen at a few
		// kbit/s while bitrate caps motion. One thread per encoder: nine
		// guests share two cores, and threads would only add overhead.
		enc = fmt.Sprintf("x264enc name=enc tune=zerolatency speed-preset=ultrafast pass=qual bitrate=%d vbv-buf-capacity=500 "+
			"key-int-max=%d threads=1 ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au", c.bitrateKbps, gop)
	}
	return enc
}

// encodeChain is the encoding half of videoPipeline: frames of format raw
// pushed into appsrc "in", encoded frames pulled from appsink "out". The
// input keeps the configured frame rate although a moving screen can bring
// a few more frames (QEMU looks every 30 ms): marked variable-rate
// (framerate=0/1), x264 holds each frame back until the next one arrives,
// a whole frame interval of latency (TestEncoderHoldsNoFrame).
func encodeChain(c config, raw string) string {
	return fmt.Sprintf("appsrc name=in is-live=true do-timestamp=true format=time max-buffers=2 leaky-type=downstream caps=%s,framerate=%d/1 ! "+
		"videoconvert ! video/x-raw,format=I420 ! %s ! appsink name=out sync=false async=false max-buffers=8", raw, c.framerate, encoder(c))
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
	m := map[string]string{
		"rfbsrc": "gstreamer1.0-plugins-bad", "videoconvert": "gstreamer1.0-plugins-base",
		"videoscale": "gstreamer1.0-plugins-base", "appsink": "gstreamer1.0-plugins-base",
		"appsrc": "gstreamer1.0-plugins-base",
	}
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
