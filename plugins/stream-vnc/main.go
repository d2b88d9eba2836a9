// Command loco-plugin-stream-vnc serves every guest's QEMU VNC display to
// the dashboard as RFB over a WebSocket the core proxies (noVNC plays it);
// the plugin itself is package vncstream.
package main

import (
	"github.com/locolan/loco/plugins/stream-vnc/vncstream"
	"github.com/locolan/loco/sdk"
)

func main() { sdk.Serve(vncstream.New()) }
