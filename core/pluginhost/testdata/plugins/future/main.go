// Command future is a plugin from a later loco that speaks only plugin API
// version 2: the host must skip it with a message naming both sides' versions.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

type v2 struct{ plugin.NetRPCUnsupportedPlugin }

func (v2) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (v2) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "LOCO_PLUGIN_MAGIC_COOKIE", MagicCookieValue: "5c1f2d6e-loco-lan-party"},
		VersionedPlugins: map[int]plugin.PluginSet{2: {"loco": v2{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
