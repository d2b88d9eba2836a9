// Command loco-plugin-stream-webrtc streams every guest's screen and sound
// to browsers over WebRTC; the plugin itself is package streamer.
package main

import (
	"github.com/locolan/loco/plugins/stream-webrtc/streamer"
	"github.com/locolan/loco/sdk"
)

func main() { sdk.Serve(streamer.New()) }
