// Command loco-plugin-input-qmp drives every guest's keyboard and mouse and
// reads its screen through QMP. The logic is package qmpinput beside it.
package main

import (
	"github.com/locolan/loco/plugins/input-qmp/qmpinput"
	"github.com/locolan/loco/sdk"
)

func main() { sdk.Serve(qmpinput.New()) }
