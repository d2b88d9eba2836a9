package sdk

import (
	"github.com/hashicorp/go-plugin"
)

// Plugin kinds. A plugin binary serves exactly one kind.
const (
	KindNetwork = "network"
	KindStream  = "stream"
	KindInput   = "input"
)

// Kinds lists every kind the core knows, in the order the core starts them
// (bench plugins are started by `loco bench` alone).
var Kinds = []string{KindNetwork, KindStream, KindInput, KindBench}

// APIVersions are the plugin API versions this SDK speaks, newest last. The
// host and plugin agree on the highest version both speak.
var APIVersions = []int{1}

// Handshake is shared by host and plugins. A binary started without the magic
// cookie is not being run by loco and says so instead of hanging.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "LOCO_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "5c1f2d6e-loco-lan-party",
}
