package sdk

import (
	"context"
	"errors"
	"fmt"

	streamv1 "github.com/locolan/loco/sdk/proto/loco/stream/v1"
)

// Viewer protocols a stream plugin serves. The core exposes each under
// /api/instances/{id}/... behind the API's token, and the dashboard picks
// the player that fits.
const (
	// ProtocolWHEP: WebRTC, signalled by WHEP through Offer and Hangup.
	ProtocolWHEP = "whep"
	// ProtocolRFB: RFB (VNC) over a WebSocket; the core proxies the
	// WebSocket to Endpoint.Dial, a unix socket in the guest's directory.
	ProtocolRFB = "rfb"
	// ProtocolMoonlight: a Moonlight client adds Endpoint.Address and
	// Port and pairs with a PIN through Pair; media does not pass the core.
	ProtocolMoonlight = "moonlight"
)

// Endpoint is one way to watch a guest.
type Endpoint struct {
	Protocol string
	// Dial is where the core connects for ProtocolRFB: "unix:/path" inside
	// the guest's own state directory (the core refuses anything else, so
	// a viewer of one guest can never reach another's display).
	Dial string
	// Address and Port are what a Moonlight client adds.
	Address string
	Port    int
	// Pairing: the endpoint takes a PIN through Pair.
	Pairing bool
	// Healthy and Status: the endpoint's health, from its own server.
	Healthy bool
	Status  string
}

// StreamEndpoints is implemented by stream plugins that serve more than
// WHEP, or something else. A plugin without it serves WHEP only (Offer),
// which is what every plugin written before it did.
type StreamEndpoints interface {
	Endpoints(ctx context.Context, instance uint32) ([]Endpoint, error)
}

// PairRequest is a client's PIN for a guest's host.
type PairRequest struct {
	Instance   uint32
	PIN        string
	ClientName string
}

// StreamPairing is implemented by stream plugins whose endpoints pair with
// a PIN (Moonlight).
type StreamPairing interface {
	Pair(ctx context.Context, req PairRequest) error
}

// Window asks the core to give a guest QEMU's GTK window, full screen, on a
// local X display the plugin runs, instead of the headless display: for a
// host that captures a whole screen (Sunshine). XDisplay is ":N".
type Window struct {
	XDisplay string
}

// StreamWindows is implemented by stream plugins that need each guest's
// picture in a window on a display of their own. Attach still gives the
// QEMU arguments; Window is asked right after it, with the same instance.
type StreamWindows interface {
	Window(ctx context.Context, in Instance) (Window, error)
}

// ErrNoWHEP is what a plugin that serves no WHEP returns from Offer and
// Hangup, wrapped with its own words.
var ErrNoWHEP = fmt.Errorf("this stream plugin serves no WHEP (see GET /api/instances/{id}/stream): %w", ErrUnsupported)

func (s *streamServer) Endpoints(ctx context.Context, req *streamv1.EndpointsRequest) (*streamv1.EndpointsResponse, error) {
	e, ok := s.impl.(StreamEndpoints)
	if !ok {
		return nil, rpcError(fmt.Errorf("the plugin serves WHEP only: %w", ErrUnsupported))
	}
	eps, err := e.Endpoints(ctx, req.Instance)
	if err != nil {
		return nil, rpcError(err)
	}
	out := &streamv1.EndpointsResponse{}
	for _, ep := range eps {
		out.Endpoints = append(out.Endpoints, &streamv1.Endpoint{Protocol: ep.Protocol, Dial: ep.Dial,
			Address: ep.Address, Port: uint32(ep.Port), Pairing: ep.Pairing, Healthy: ep.Healthy, Status: ep.Status})
	}
	return out, nil
}

func (s *streamServer) Pair(ctx context.Context, req *streamv1.PairRequest) (*streamv1.PairResponse, error) {
	p, ok := s.impl.(StreamPairing)
	if !ok {
		return nil, rpcError(fmt.Errorf("no endpoint of this stream plugin pairs: %w", ErrUnsupported))
	}
	err := p.Pair(ctx, PairRequest{Instance: req.Instance, PIN: req.Pin, ClientName: req.ClientName})
	return &streamv1.PairResponse{}, rpcError(err)
}

// attachWindow adds the plugin's window, if it asks for one, to an Attach
// answer.
func (s *streamServer) attachWindow(ctx context.Context, in Instance, resp *streamv1.AttachResponse) error {
	w, ok := s.impl.(StreamWindows)
	if !ok {
		return nil
	}
	win, err := w.Window(ctx, in)
	if err != nil {
		return err
	}
	if win.XDisplay != "" {
		resp.Window = &streamv1.Window{XDisplay: win.XDisplay}
	}
	return nil
}

// StreamEndpoints asks the stream plugin how viewers reach a guest. A
// plugin that predates the question serves WHEP only, and gets that answer.
func (c *Client) StreamEndpoints(ctx context.Context, instance uint32) ([]Endpoint, error) {
	r, err := c.stream.Endpoints(ctx, &streamv1.EndpointsRequest{Instance: instance})
	if err != nil {
		err = fromRPC(err)
		if errors.Is(err, ErrUnsupported) {
			return []Endpoint{{Protocol: ProtocolWHEP, Healthy: true}}, nil
		}
		return nil, fmt.Errorf("asking the stream plugin how to watch instance %d: %w", instance, err)
	}
	var out []Endpoint
	for _, e := range r.Endpoints {
		out = append(out, Endpoint{Protocol: e.Protocol, Dial: e.Dial, Address: e.Address, Port: int(e.Port),
			Pairing: e.Pairing, Healthy: e.Healthy, Status: e.Status})
	}
	return out, nil
}

// Pair hands a client's PIN to the stream plugin.
func (c *Client) Pair(ctx context.Context, req PairRequest) error {
	if _, err := c.stream.Pair(ctx, &streamv1.PairRequest{Instance: req.Instance, Pin: req.PIN, ClientName: req.ClientName}); err != nil {
		return fmt.Errorf("pairing a client with instance %d: %w", req.Instance, fromRPC(err))
	}
	return nil
}

// AttachStream is Attach for a stream plugin, with the window it asks for
// (a zero Window when it asks for none).
func (c *Client) AttachStream(ctx context.Context, in Instance) ([]string, Window, error) {
	r, err := c.stream.Attach(ctx, &streamv1.AttachRequest{Instance: in.Proto()})
	if err != nil {
		return nil, Window{}, fmt.Errorf("attaching instance %d to the stream plugin: %w", in.Index, fromRPC(err))
	}
	var w Window
	if r.Window != nil {
		w.XDisplay = r.Window.XDisplay
	}
	return r.QemuArgs, w, nil
}
