// Command good is a network plugin for the plugin host's tests. It records
// every Configure and Attach, with its PID, in <state_dir>/events.log, so a
// test can see that state is re-sent to a restarted process.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

type good struct{ stateDir string }

type config struct {
	Subnet string  `cty:"subnet"`
	Ports  float64 `cty:"ports"`
	Probe  *struct {
		Interval string `cty:"interval"`
	} `cty:"probe"`
}

func (g *good) Info() sdk.Info {
	return sdk.Info{Name: "test", Kind: sdk.KindNetwork, Version: "0.0.1"}
}

func (g *good) ConfigSchema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			sdk.Required("subnet", cty.String, "IPv4 subnet in CIDR form"),
			sdk.Optional("ports", cty.Number, cty.NumberIntVal(4), "port count"),
		},
		Blocks: []sdk.Block{{Name: "probe", Nesting: sdk.NestingSingle, Body: sdk.Schema{
			Attributes: []sdk.Attribute{sdk.Optional("interval", cty.String, cty.StringVal("1s"), "")},
		}}},
	}
}

func (g *good) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if _, _, err := net.ParseCIDR(c.Subnet); err != nil {
		return &sdk.AttrError{Path: []string{"subnet"}, Summary: "Invalid subnet", Detail: fmt.Sprintf("%q is not CIDR, e.g. 10.0.2.0/24", c.Subnet)}
	}
	g.stateDir = cluster.StateDir
	return g.record("configure pid=%d subnet=%s ports=%v instances=%d", os.Getpid(), c.Subnet, c.Ports, len(cluster.Instances))
}

func (g *good) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	if err := g.record("attach pid=%d instance=%d", os.Getpid(), in.Index); err != nil {
		return nil, err
	}
	return []string{"-netdev", fmt.Sprintf("dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=%d,remote.type=inet,remote.host=127.0.0.1,remote.port=40000", 40001+in.Index)}, nil
}

func (g *good) Status(context.Context) (sdk.LANStatus, error) {
	return sdk.LANStatus{Healthy: true, Summary: "test"}, nil
}

func (g *good) record(format string, args ...any) error {
	if g.stateDir == "" {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(g.stateDir, "events.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, format+"\n", args...)
	return err
}

func main() { sdk.Serve(&good{}) }
