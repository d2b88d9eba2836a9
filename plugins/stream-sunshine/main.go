// Command loco-plugin-stream-sunshine gives every guest its own Sunshine
// host for Moonlight clients; the plugin itself is package sunshine.
package main

import (
	"github.com/locolan/loco/plugins/stream-sunshine/sunshine"
	"github.com/locolan/loco/sdk"
)

func main() { sdk.Serve(sunshine.New()) }
