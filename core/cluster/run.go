package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/spec"
)

// Running is a cluster that Start brought up: guests supervised, the API
// serving on Addr. Stop powers it down.
type Running struct {
	*Cluster
	// Addr is where the API listens (the spec may ask for port 0).
	Addr net.Addr
	// APIDone reports the API server's end: nil after a clean shutdown.
	APIDone <-chan error
}

// Start is `loco run` up to the point of supervising: it claims the state
// directory, listens for the API (first, so that a busy port is reported
// before any guest boots), brings the plugins and guests up, serves the
// API until ctx ends and records its address in the state. Problems in the
// spec come back as diagnostics; on any failure nothing is left running.
func Start(ctx context.Context, c *spec.Cluster, opts Options) (*Running, hcl.Diagnostics, error) {
	cl, err := Open(c, opts)
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", c.API.Listen)
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("the API cannot listen on %s (api.listen): %w", c.API.Listen, err)
	}
	diags, err := cl.Up(ctx)
	if err == nil && diags.HasErrors() {
		err = errSpec
	}
	if err != nil {
		lis.Close()
		downCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cl.Down(downCtx)
		cancel()
		cl.Close()
		return nil, diags, err
	}
	done := api.New(cl, cl.Token, cl.log).Serve(ctx, lis)
	if err := cl.SetAPIAddr(lis.Addr().String()); err != nil {
		cl.log.Warn("could not record the API address", "err", err)
	}
	return &Running{Cluster: cl, Addr: lis.Addr(), APIDone: done}, diags, nil
}

// errSpec is Start's error when the diagnostics hold the reason.
var errSpec = errors.New("the spec has errors")

// IsSpecError says Start failed on the diagnostics it returned.
func IsSpecError(err error) bool { return errors.Is(err, errSpec) }

// Stop powers the guests down (power button, the spec's stop_grace, quit,
// kill), stops the plugins and releases the state directory. The API stops
// with the context Start was given.
func (r *Running) Stop(ctx context.Context) error {
	defer r.Close()
	return r.Down(ctx)
}
