package sdk

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	benchv1 "github.com/locolan/loco/sdk/proto/loco/bench/v1"
	inputv1 "github.com/locolan/loco/sdk/proto/loco/input/v1"
	networkv1 "github.com/locolan/loco/sdk/proto/loco/network/v1"
	pluginv1 "github.com/locolan/loco/sdk/proto/loco/plugin/v1"
	streamv1 "github.com/locolan/loco/sdk/proto/loco/stream/v1"
)

// RegisterServices puts impl's services on a gRPC server: the base service,
// and the service of the kind impl says it is. Serve does this for you; use
// it to host a plugin in a server of your own (sdktest does).
func RegisterServices(s *grpc.Server, impl Plugin) error {
	kind := impl.Info().Kind
	pluginv1.RegisterPluginServer(s, &baseServer{impl: impl})
	switch kind {
	case KindNetwork:
		n, ok := impl.(Network)
		if !ok {
			return fmt.Errorf("plugin says it is a %s plugin but does not implement sdk.Network", kind)
		}
		networkv1.RegisterNetworkServer(s, &networkServer{impl: n})
	case KindStream:
		st, ok := impl.(Stream)
		if !ok {
			return fmt.Errorf("plugin says it is a %s plugin but does not implement sdk.Stream", kind)
		}
		streamv1.RegisterStreamServer(s, &streamServer{impl: st})
	case KindInput:
		in, ok := impl.(Input)
		if !ok {
			return fmt.Errorf("plugin says it is a %s plugin but does not implement sdk.Input", kind)
		}
		inputv1.RegisterInputServer(s, &inputServer{impl: in})
	case KindBench:
		b, ok := impl.(Bench)
		if !ok {
			return fmt.Errorf("plugin says it is a %s plugin but does not implement sdk.Bench", kind)
		}
		benchv1.RegisterBenchServer(s, &benchServer{impl: b})
	default:
		return fmt.Errorf("plugin kind %q is not one of %v", kind, Kinds)
	}
	return nil
}

type baseServer struct {
	pluginv1.UnimplementedPluginServer
	impl Plugin
}

func (s *baseServer) Info(context.Context, *pluginv1.InfoRequest) (*pluginv1.InfoResponse, error) {
	i := s.impl.Info()
	return &pluginv1.InfoResponse{Name: i.Name, Kind: i.Kind, Version: i.Version, Capabilities: i.Capabilities}, nil
}

func (s *baseServer) ConfigSchema(context.Context, *pluginv1.ConfigSchemaRequest) (*pluginv1.ConfigSchemaResponse, error) {
	p, err := s.impl.ConfigSchema().Proto()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "plugin schema: %v", err)
	}
	return &pluginv1.ConfigSchemaResponse{Schema: p}, nil
}

func (s *baseServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	cfg, err := DecodeConfig(req.ConfigMsgpack, s.impl.ConfigSchema().ImpliedType())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	err = s.impl.Configure(ctx, cfg, clusterFromProto(req.Cluster))
	return &pluginv1.ConfigureResponse{Diagnostics: diagnosticsFromError(err)}, nil
}

type networkServer struct {
	networkv1.UnimplementedNetworkServer
	impl Network
}

func (s *networkServer) Attach(ctx context.Context, req *networkv1.AttachRequest) (*networkv1.AttachResponse, error) {
	args, err := s.impl.Attach(ctx, instanceFromProto(req.Instance))
	if err != nil {
		return nil, rpcError(err)
	}
	return &networkv1.AttachResponse{QemuArgs: args}, nil
}

func (s *networkServer) Status(ctx context.Context, _ *networkv1.StatusRequest) (*networkv1.StatusResponse, error) {
	st, err := s.impl.Status(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	return lanStatusToProto(st), nil
}

type streamServer struct {
	streamv1.UnimplementedStreamServer
	impl Stream
}

func (s *streamServer) Attach(ctx context.Context, req *streamv1.AttachRequest) (*streamv1.AttachResponse, error) {
	in := instanceFromProto(req.Instance)
	args, err := s.impl.Attach(ctx, in)
	if err != nil {
		return nil, rpcError(err)
	}
	resp := &streamv1.AttachResponse{QemuArgs: args}
	if err := s.attachWindow(ctx, in, resp); err != nil {
		return nil, rpcError(err)
	}
	return resp, nil
}

func (s *streamServer) Offer(ctx context.Context, req *streamv1.OfferRequest) (*streamv1.OfferResponse, error) {
	answer, id, err := s.impl.Offer(ctx, OfferRequest{Instance: req.Instance, SDP: req.Sdp, Variant: req.Variant})
	if err != nil {
		return nil, rpcError(err)
	}
	return &streamv1.OfferResponse{Sdp: answer, SessionId: id}, nil
}

func (s *streamServer) Hangup(ctx context.Context, req *streamv1.HangupRequest) (*streamv1.HangupResponse, error) {
	return &streamv1.HangupResponse{}, rpcError(s.impl.Hangup(ctx, req.SessionId))
}

func (s *streamServer) Stats(ctx context.Context, _ *streamv1.StatsRequest) (*streamv1.StatsResponse, error) {
	stats, err := s.impl.Stats(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	out := &streamv1.StatsResponse{}
	for _, st := range stats {
		out.Streams = append(out.Streams, &streamv1.StreamStats{
			Instance: st.Instance, Variant: st.Variant, Width: uint32(st.Width), Height: uint32(st.Height),
			FramesIn: st.FramesIn, FramesOut: st.FramesOut, Repeats: st.Repeats, Fps: st.FPS,
			BitrateBps: st.BitrateBPS, EncodeMs: st.EncodeMs, Viewers: st.Viewers, KeyFrames: st.KeyFrames,
		})
	}
	return out, nil
}

type inputServer struct {
	inputv1.UnimplementedInputServer
	impl Input
}

func (s *inputServer) Send(ctx context.Context, req *inputv1.SendRequest) (*inputv1.SendResponse, error) {
	events := make([]InputEvent, 0, len(req.Events))
	for i, e := range req.Events {
		ev, err := eventFromProto(e)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "event %d: %v", i, err)
		}
		events = append(events, ev)
	}
	return &inputv1.SendResponse{}, rpcError(s.impl.Send(ctx, req.Instance, events))
}

func (s *inputServer) Screenshot(ctx context.Context, req *inputv1.ScreenshotRequest) (*inputv1.ScreenshotResponse, error) {
	shot, err := s.impl.Screenshot(ctx, req.Instance)
	if err != nil {
		return nil, rpcError(err)
	}
	return &inputv1.ScreenshotResponse{Png: shot.PNG, Width: uint32(shot.Width), Height: uint32(shot.Height)}, nil
}

func eventFromProto(e *inputv1.Event) (InputEvent, error) {
	switch ev := e.GetEvent().(type) {
	case *inputv1.Event_Key:
		return InputEvent{Key: &KeyEvent{QCode: ev.Key.Qcode, Down: ev.Key.Down}}, nil
	case *inputv1.Event_Rel:
		return InputEvent{Rel: &RelEvent{DX: ev.Rel.Dx, DY: ev.Rel.Dy}}, nil
	case *inputv1.Event_Abs:
		return InputEvent{Abs: &AbsEvent{X: ev.Abs.X, Y: ev.Abs.Y}}, nil
	case *inputv1.Event_Button:
		return InputEvent{Button: &ButtonEvent{Button: ev.Button.Button, Down: ev.Button.Down}}, nil
	case *inputv1.Event_Wheel:
		return InputEvent{Wheel: &WheelEvent{Delta: ev.Wheel.Delta}}, nil
	default:
		return InputEvent{}, fmt.Errorf("empty event")
	}
}

func eventToProto(e InputEvent) (*inputv1.Event, error) {
	switch {
	case e.Key != nil:
		return &inputv1.Event{Event: &inputv1.Event_Key{Key: &inputv1.Key{Qcode: e.Key.QCode, Down: e.Key.Down}}}, nil
	case e.Rel != nil:
		return &inputv1.Event{Event: &inputv1.Event_Rel{Rel: &inputv1.RelativeMotion{Dx: e.Rel.DX, Dy: e.Rel.DY}}}, nil
	case e.Abs != nil:
		return &inputv1.Event{Event: &inputv1.Event_Abs{Abs: &inputv1.AbsolutePointer{X: e.Abs.X, Y: e.Abs.Y}}}, nil
	case e.Button != nil:
		return &inputv1.Event{Event: &inputv1.Event_Button{Button: &inputv1.Button{Button: e.Button.Button, Down: e.Button.Down}}}, nil
	case e.Wheel != nil:
		return &inputv1.Event{Event: &inputv1.Event_Wheel{Wheel: &inputv1.Wheel{Delta: e.Wheel.Delta}}}, nil
	default:
		return nil, fmt.Errorf("empty event")
	}
}
