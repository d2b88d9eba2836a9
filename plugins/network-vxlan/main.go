// Command loco-plugin-network-vxlan is loco's LAN stretched across hosts:
// the socket plugin's segment (switch, DHCP, prober, capture) plus a VXLAN
// uplink (RFC 7348) to the other hosts' segments. The logic is package
// vxlan beside it.
package main

import (
	"github.com/locolan/loco/plugins/network-vxlan/vxlan"
	"github.com/locolan/loco/sdk"
)

// version is set at build time (-X main.version).
var version = "1.0.0"

func main() { sdk.Serve(vxlan.New(version)) }
