package main

import "fmt"

// videoPipeline is one guest's capture and encoder, in gst-launch syntax.
//
//	rfbsrc (only emits when the screen changes) ──► compositor ◄── black live source at the frame rate
//	                                                  │ a frame every 1/framerate: the last screen, repeated
//	                                                  ▼
//	                          videoconvert ► x264 (or vp8) ► appsink "out" ► pion track, fanned out to viewers
//
// The compositor is the heartbeat: it is driven by the live black source, so
// a static screen still yields a steady frame rate (viewers see fps, key
// frames can be forced at any time) while a change goes out on the next
// tick. Its output format is pinned to BGRx, what rfbsrc delivers, so it
// never converts on its input side. rfbsrc cannot follow a resolution change;
// the plugin rebuilds the pipeline at the new size instead. rfbsrc starts
// with a full update request and is switched to incremental ones after the
// first frame (package gst), or an idle screen would never show up.
func videoPipeline(c config, rfbPort int, s size) string {
	// I420 needs even dimensions; an odd extra row or column stays black.
	w, h := (s.W+1)&^1, (s.H+1)&^1
	raw := fmt.Sprintf("video/x-raw,format=BGRx,width=%d,height=%d,framerate=%d/1", w, h, c.framerate)
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
	return fmt.Sprintf("compositor name=mix background=black sink_0::zorder=0 sink_1::zorder=1 ! %s ! "+
		"videoconvert ! video/x-raw,format=I420 ! %s ! appsink name=out sync=false max-buffers=8 "+
		"videotestsrc is-live=true pattern=black ! %s ! mix.sink_0 "+
		"rfbsrc name=vnc host=127.0.0.1 port=%d view-only=true shared=true incremental=false do-timestamp=true ! "+
		"queue leaky=downstream max-size-buffers=2 ! mix.sink_1",
		raw, enc, raw, rfbPort)
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
		"rfbsrc": "gstreamer1.0-plugins-bad", "compositor": "gstreamer1.0-plugins-base",
		"videotestsrc": "gstreamer1.0-plugins-base", "videoconvert": "gstreamer1.0-plugins-base",
		"appsink": "gstreamer1.0-plugins-base", "queue": "libgstreamer1.0-0",
	}
	if c.codec == "vp8" {
		m["vp8enc"] = "gstreamer1.0-plugins-good"
	} else {
		m["x264enc"] = "gstreamer1.0-plugins-ugly"
	}
	if c.audio {
		m["appsrc"] = "gstreamer1.0-plugins-base"
		m["audioconvert"] = "gstreamer1.0-plugins-base"
		m["opusenc"] = "gstreamer1.0-plugins-base"
	}
	return m
}
