// Command loco-plugin-network-socket is loco's LAN: an Ethernet switch that
// QEMU guests join over unix datagram sockets, with DHCP, a prober, LAN
// status and capture. The logic is package lan beside it.
package main

import (
	"github.com/locolan/loco/plugins/network-socket/lan"
	"github.com/locolan/loco/sdk"
)

// version is set at build time (-X main.version).
var version = "1.0.0"

func main() { sdk.Serve(lan.New(version)) }
