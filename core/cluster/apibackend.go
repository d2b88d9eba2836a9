package cluster

import (
	"slices"
	"strings"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/sdk"
)

// The cluster is the API's backend (api.Backend): each kind's plugin as its
// current process serves it. A nil *sdk.Client must come back as a nil
// interface, or the API would call into it.

func (cl *Cluster) client(kind string) *sdk.Client {
	if p := cl.plugins.Get(kind); p != nil {
		return p.Client()
	}
	return nil
}

// Network is the network plugin, or nil.
func (cl *Cluster) Network() api.NetworkPlugin {
	if c := cl.client(sdk.KindNetwork); c != nil {
		return c
	}
	return nil
}

// Input is the input plugin, or nil.
func (cl *Cluster) Input() api.InputPlugin {
	if c := cl.client(sdk.KindInput); c != nil {
		return c
	}
	return nil
}

// Stream is the stream plugin, or nil.
func (cl *Cluster) Stream() api.StreamPlugin {
	if c := cl.client(sdk.KindStream); c != nil {
		return c
	}
	return nil
}

// Plugins are the cluster's plugin processes, sorted by kind.
func (cl *Cluster) Plugins() []api.PluginProcess {
	if cl.plugins == nil {
		return nil
	}
	var out []api.PluginProcess
	for kind, p := range cl.plugins.Plugins {
		pp := api.PluginProcess{Kind: kind, Name: p.Info().Name, PID: p.PID(), Restarts: p.Restarts()}
		if c := p.Client(); c != nil {
			pp.Metrics = c
		}
		out = append(out, pp)
	}
	slices.SortFunc(out, func(a, b api.PluginProcess) int { return strings.Compare(a.Kind, b.Kind) })
	return out
}

var _ api.Backend = (*Cluster)(nil)
