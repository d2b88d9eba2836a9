package sdk

import (
	"context"
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"

	benchv1 "github.com/locolan/loco/sdk/proto/loco/bench/v1"
	inputv1 "github.com/locolan/loco/sdk/proto/loco/input/v1"
	networkv1 "github.com/locolan/loco/sdk/proto/loco/network/v1"
	pluginv1 "github.com/locolan/loco/sdk/proto/loco/plugin/v1"
	streamv1 "github.com/locolan/loco/sdk/proto/loco/stream/v1"
)

// Client is the host side of the plugin protocol, over any gRPC connection:
// the one go-plugin sets up, or a plain dial to `loco-plugin-x serve`.
type Client struct {
	base    pluginv1.PluginClient
	network networkv1.NetworkClient
	stream  streamv1.StreamClient
	input   inputv1.InputClient
	bench   benchv1.BenchClient
}

// NewClient wraps a gRPC connection to a plugin.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{
		base:    pluginv1.NewPluginClient(conn),
		network: networkv1.NewNetworkClient(conn),
		stream:  streamv1.NewStreamClient(conn),
		input:   inputv1.NewInputClient(conn),
		bench:   benchv1.NewBenchClient(conn),
	}
}

// Problem is a configuration problem a plugin reported.
type Problem struct {
	Warning bool
	Summary string
	Detail  string
	Path    []string // attribute path in the plugin's block, if known
}

func (c *Client) Info(ctx context.Context) (Info, error) {
	r, err := c.base.Info(ctx, &pluginv1.InfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("asking plugin for its info: %w", fromRPC(err))
	}
	return Info{Name: r.Name, Kind: r.Kind, Version: r.Version, Capabilities: r.Capabilities}, nil
}

func (c *Client) ConfigSchema(ctx context.Context) (Schema, error) {
	r, err := c.base.ConfigSchema(ctx, &pluginv1.ConfigSchemaRequest{})
	if err != nil {
		return Schema{}, fmt.Errorf("asking plugin for its config schema: %w", fromRPC(err))
	}
	return SchemaFromProto(r.Schema)
}

// Configure sends the decoded block; ty is the schema's implied type.
func (c *Client) Configure(ctx context.Context, cfg cty.Value, ty cty.Type, cluster Cluster) ([]Problem, error) {
	b, err := EncodeConfig(cfg, ty)
	if err != nil {
		return nil, err
	}
	r, err := c.base.Configure(ctx, &pluginv1.ConfigureRequest{ConfigMsgpack: b, Cluster: cluster.Proto()})
	if err != nil {
		return nil, fmt.Errorf("configuring plugin: %w", fromRPC(err))
	}
	var out []Problem
	for _, d := range r.Diagnostics {
		out = append(out, Problem{Warning: d.Severity == pluginv1.Diagnostic_SEVERITY_WARNING,
			Summary: d.Summary, Detail: d.Detail, Path: d.AttributePath})
	}
	return out, nil
}

// Attach asks a network or stream plugin for an instance's QEMU arguments.
func (c *Client) Attach(ctx context.Context, kind string, in Instance) ([]string, error) {
	switch kind {
	case KindNetwork:
		r, err := c.network.Attach(ctx, &networkv1.AttachRequest{Instance: in.Proto()})
		if err != nil {
			return nil, fmt.Errorf("attaching instance %d to the network plugin: %w", in.Index, fromRPC(err))
		}
		return r.QemuArgs, nil
	case KindStream:
		r, err := c.stream.Attach(ctx, &streamv1.AttachRequest{Instance: in.Proto()})
		if err != nil {
			return nil, fmt.Errorf("attaching instance %d to the stream plugin: %w", in.Index, fromRPC(err))
		}
		return r.QemuArgs, nil
	default:
		return nil, nil // input plugins contribute no QEMU arguments
	}
}

func (c *Client) LANStatus(ctx context.Context) (LANStatus, error) {
	r, err := c.network.Status(ctx, &networkv1.StatusRequest{})
	if err != nil {
		return LANStatus{}, fmt.Errorf("asking the network plugin for LAN status: %w", fromRPC(err))
	}
	return lanStatusFromProto(r), nil
}

func (c *Client) Offer(ctx context.Context, req OfferRequest) (answer, sessionID string, err error) {
	r, err := c.stream.Offer(ctx, &streamv1.OfferRequest{Instance: req.Instance, Sdp: req.SDP, Variant: req.Variant})
	if err != nil {
		return "", "", fmt.Errorf("sending the viewer's offer to the stream plugin: %w", fromRPC(err))
	}
	return r.Sdp, r.SessionId, nil
}

func (c *Client) Hangup(ctx context.Context, sessionID string) error {
	if _, err := c.stream.Hangup(ctx, &streamv1.HangupRequest{SessionId: sessionID}); err != nil {
		return fmt.Errorf("hanging up stream session %s: %w", sessionID, fromRPC(err))
	}
	return nil
}

func (c *Client) StreamStats(ctx context.Context) ([]StreamStats, error) {
	r, err := c.stream.Stats(ctx, &streamv1.StatsRequest{})
	if err != nil {
		return nil, fmt.Errorf("asking the stream plugin for stats: %w", fromRPC(err))
	}
	var out []StreamStats
	for _, s := range r.Streams {
		out = append(out, StreamStats{Instance: s.Instance, Variant: s.Variant, Width: int(s.Width), Height: int(s.Height),
			FramesIn: s.FramesIn, FramesOut: s.FramesOut, Repeats: s.Repeats, FPS: s.Fps,
			BitrateBPS: s.BitrateBps, EncodeMs: s.EncodeMs, Viewers: s.Viewers, KeyFrames: s.KeyFrames})
	}
	return out, nil
}

func (c *Client) Send(ctx context.Context, instance uint32, events []InputEvent) error {
	req := &inputv1.SendRequest{Instance: instance}
	for i, e := range events {
		pe, err := eventToProto(e)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		req.Events = append(req.Events, pe)
	}
	if _, err := c.input.Send(ctx, req); err != nil {
		return fmt.Errorf("sending input to instance %d: %w", instance, fromRPC(err))
	}
	return nil
}

func (c *Client) Screenshot(ctx context.Context, instance uint32) (Screenshot, error) {
	r, err := c.input.Screenshot(ctx, &inputv1.ScreenshotRequest{Instance: instance})
	if err != nil {
		return Screenshot{}, fmt.Errorf("taking a screenshot of instance %d: %w", instance, fromRPC(err))
	}
	return Screenshot{PNG: r.Png, Width: int(r.Width), Height: int(r.Height)}, nil
}
