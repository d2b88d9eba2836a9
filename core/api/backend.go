package api

import (
	"context"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// Backend is the running cluster the API describes.
type Backend interface {
	Plan() *plan.Plan
	Guests() []supervise.GuestStatus
	Events() []supervise.Event
	// Network, Input and Stream are the cluster's plugin of that kind as
	// its current process serves it (asked anew for each request: a
	// plugin is restarted under the API), or nil when it has none.
	Network() NetworkPlugin
	Input() InputPlugin
	Stream() StreamPlugin
	// Plugins are the cluster's plugin processes, for /metrics.
	Plugins() []PluginProcess
}

// PluginProcess is one plugin as /metrics shows it.
type PluginProcess struct {
	Kind, Name string
	PID        int
	Restarts   int
	// Metrics is its Metrics RPC; nil while no process serves it.
	Metrics MetricsPlugin
}

// MetricsPlugin is what /metrics asks of every plugin.
type MetricsPlugin interface {
	Metrics(ctx context.Context) ([]sdk.MetricFamily, error)
}

// NetworkPlugin is what the API asks of the network plugin.
type NetworkPlugin interface {
	LANStatus(ctx context.Context) (sdk.LANStatus, error)
	Capture(ctx context.Context, req sdk.CaptureRequest) (*sdk.FrameStream, error)
}

// InputPlugin is what the API asks of the input plugin.
type InputPlugin interface {
	Send(ctx context.Context, instance uint32, events []sdk.InputEvent) error
	Screenshot(ctx context.Context, instance uint32) (sdk.Screenshot, error)
}

// StreamPlugin is what the API asks of the stream plugin.
type StreamPlugin interface {
	Offer(ctx context.Context, req sdk.OfferRequest) (answer, sessionID string, err error)
	Hangup(ctx context.Context, sessionID string) error
	StreamStats(ctx context.Context) ([]sdk.StreamStats, error)
	StreamEndpoints(ctx context.Context, instance uint32) ([]sdk.Endpoint, error)
	Pair(ctx context.Context, req sdk.PairRequest) error
}
