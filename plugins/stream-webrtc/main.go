// Command loco-plugin-stream-webrtc streams every guest's screen and sound
// to browsers over WebRTC. Per guest it runs one GStreamer pipeline (the
// guest's VNC display through rfbsrc, a heartbeat, H.264 or VP8) only while
// someone watches, and fans the encoded frames out to every viewer on shared
// pion tracks. Viewers connect with WHEP, which loco proxies at
// /api/instances/{id}/whep.
package main

import (
	"github.com/locolan/loco/sdk"
)

var logger = sdk.Logger()

func main() { sdk.Serve(newPlugin()) }
