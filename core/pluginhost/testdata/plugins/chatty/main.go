// Command chatty writes to stdout before the handshake, as a careless plugin
// might; the host must fail it with a readable error.
package main

import (
	"context"
	"fmt"

	"github.com/locolan/loco/sdk"
)

type chatty struct{}

func (chatty) Info() sdk.Info                                           { return sdk.Info{Name: "chatty", Kind: sdk.KindInput} }
func (chatty) ConfigSchema() sdk.Schema                                 { return sdk.Schema{} }
func (chatty) Configure(context.Context, sdk.Config, sdk.Cluster) error { return nil }
func (chatty) Send(context.Context, uint32, []sdk.InputEvent) error     { return nil }
func (chatty) Screenshot(context.Context, uint32) (sdk.Screenshot, error) {
	return sdk.Screenshot{}, nil
}

func main() {
	fmt.Println("hello from chatty")
	sdk.Serve(chatty{})
}
