// Command loco-plugin-stream-webrtc streams every guest's screen and sound
// to browsers over WebRTC; the plugin itself is package streamer.
package main

import (
	"os"
	"runtime"
	"syscall"

	"github.com/locolan/loco/plugins/stream-webrtc/streamer"
	"github.com/locolan/loco/sdk"
)

func main() {
	if env, changed := keepSysmonAwake(os.Environ()); changed {
		if exe, err := os.Executable(); err == nil {
			// Exec keeps the pid, stdin, stdout and stderr go-plugin
			// handed over; on failure the plugin runs as it is.
			_ = syscall.Exec(exe, os.Args, env)
		}
	}
	if n, ok := goProcs(os.Getenv("GOMAXPROCS")); ok {
		runtime.GOMAXPROCS(n)
	}
	sdk.Serve(streamer.New())
}
