// Command loco-plugin-bench-loco serves loco's own benchmark scenarios
// (boot, lan, density, input-latency) to `loco bench`. The logic is
// package scenarios beside it.
package main

import (
	"github.com/locolan/loco/plugins/bench-loco/scenarios"
	"github.com/locolan/loco/sdk"
)

func main() { sdk.Serve(scenarios.New()) }
