// Package qmpinput drives every guest's keyboard and mouse and reads its
// screen through QMP, on the input QMP socket the core reserves for it in
// each guest (QEMU serves one client per QMP socket, so the core's own
// socket stays free). Plugin is the input plugin "qmp".
package qmpinput

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/input"
)

// Defaults of the plugin block. The event interval is what the test guest
// needs under TCG on a busy 2-core host: sent back to back (~1 ms apart),
// 13-17% of a 500-key burst was lost in the guest (PS/2 holds 16 bytes, and
// Linux's evdev buffer overflows behind a slow reader); 2 ms apart none
// were, even with two CPU hogs running. 5 ms leaves room and still types
// 100 characters a second.
const (
	defaultInterval = 5 * time.Millisecond
	defaultTimeout  = 5 * time.Second
)

// Plugin is the input plugin "qmp"; New makes one.
type Plugin struct {
	mu       sync.Mutex
	interval time.Duration
	timeout  time.Duration
	guests   map[uint32]*guest
	st       *inputStats // metrics.go
}

var _ sdk.Input = (*Plugin)(nil)

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "qmp", Kind: sdk.KindInput, Version: "1.0.0",
		Capabilities: []string{"key", "rel", "abs", "button", "wheel", "screenshot-png"}}
}

// ConfigSchema declares: input "qmp" { event_interval = "5ms"  timeout = "5s" }.
func (p *Plugin) ConfigSchema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		sdk.Optional("event_interval", cty.String, cty.StringVal(defaultInterval.String()),
			"least time between two input events to one guest, so its PS/2 queue and input buffers keep up (0s..1s)"),
		sdk.Optional("timeout", cty.String, cty.StringVal(defaultTimeout.String()),
			"bound on every QMP call: connect, input, screendump (100ms..5m)"),
	}}
}

func (p *Plugin) Configure(_ context.Context, cfg sdk.Config, cluster sdk.Cluster) error {
	var c struct {
		Interval string `cty:"event_interval"`
		Timeout  string `cty:"timeout"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	interval, timeout := defaultInterval, defaultTimeout
	var errs []error
	if c.Interval != "" {
		d, err := time.ParseDuration(c.Interval)
		if err != nil || d < 0 || d > time.Second {
			errs = append(errs, &sdk.AttrError{Path: []string{"event_interval"}, Summary: "Invalid event interval",
				Detail: fmt.Sprintf("%q: give a duration from 0s to 1s, e.g. \"5ms\"", c.Interval)})
		}
		interval = d
	}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d < 100*time.Millisecond || d > 5*time.Minute {
			errs = append(errs, &sdk.AttrError{Path: []string{"timeout"}, Summary: "Invalid timeout",
				Detail: fmt.Sprintf("%q: give a duration from 100ms to 5m, e.g. \"5s\"", c.Timeout)})
		}
		timeout = d
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	guests := make(map[uint32]*guest, len(cluster.Instances))
	for _, in := range cluster.Instances {
		if in.InputQMPSocket == "" {
			return fmt.Errorf("instance %d (%s) has no input QMP socket: this loco reserves none for input plugins", in.Index, in.Name)
		}
		guests[in.Index] = &guest{in: in, interval: interval, timeout: timeout}
		removeStaleScreendumps(in.StateDir)
	}
	p.mu.Lock()
	old := p.guests
	p.interval, p.timeout, p.guests = interval, timeout, guests
	p.mu.Unlock()
	// A connection left open would hold QEMU's only client slot on that
	// socket and lock the new configuration out.
	for _, g := range old {
		g.close()
	}
	sdk.Logger().Debug("configured", "guests", len(guests), "event_interval", interval.String(), "timeout", timeout.String())
	return nil
}

func (p *Plugin) guest(instance uint32) (*guest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.guests == nil {
		return nil, fmt.Errorf("the input plugin is not configured yet: %w", sdk.ErrNotReady)
	}
	g, ok := p.guests[instance]
	if !ok {
		return nil, fmt.Errorf("instance %d: %w; the cluster has %d", instance, sdk.ErrNoInstance, len(p.guests))
	}
	return g, nil
}

func (p *Plugin) Send(ctx context.Context, instance uint32, events []sdk.InputEvent) (err error) {
	defer func() { p.recordSend(instance, events, err) }()
	g, err := p.guest(instance)
	if err != nil {
		return err
	}
	cmds := make([][]qmpEvent, 0, len(events))
	for i, e := range events {
		if err := input.Validate(e); err != nil {
			return fmt.Errorf("event %d: %w: %w", i, err, sdk.ErrInvalid)
		}
		cmds = append(cmds, toQMP(e)...)
	}
	return g.send(ctx, cmds)
}

func (p *Plugin) Screenshot(ctx context.Context, instance uint32) (_ sdk.Screenshot, err error) {
	defer func(start time.Time) { p.recordScreenshot(instance, time.Since(start), err) }(time.Now())
	g, err := p.guest(instance)
	if err != nil {
		return sdk.Screenshot{}, err
	}
	return g.screenshot(ctx)
}

// removeStaleScreendumps deletes screendumps a crashed predecessor left
// behind; each is a full-screen PNG, and nobody else reads them.
func removeStaleScreendumps(dir string) {
	if dir == "" {
		return
	}
	stale, _ := filepath.Glob(filepath.Join(dir, screendumpPrefix+"*"))
	for _, f := range stale {
		os.Remove(f)
	}
}
