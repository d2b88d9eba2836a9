package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// backend stands in for a running cluster behind the real api.Server; its
// input plugin is a stand-in too (standInInput), so what the client sends
// is seen as the plugin would see it.
type backend struct{ in *standInInput }

func (b backend) Plan() *plan.Plan {
	return &plan.Plan{Accel: "tcg", Guests: []plan.Guest{{Index: 0, Name: "c-0", MAC: "52:00:00:00:00:00"}}}
}
func (b backend) Guests() []supervise.GuestStatus {
	return []supervise.GuestStatus{{Index: 0, Name: "c-0", State: supervise.Running, PID: 1, Started: time.Now()}}
}
func (b backend) Events() []supervise.Event    { return nil }
func (b backend) Network() api.NetworkPlugin   { return nil }
func (b backend) Input() api.InputPlugin       { return b.in }
func (b backend) Stream() api.StreamPlugin     { return nil }
func (b backend) Plugins() []api.PluginProcess { return nil }

// standInInput stands in for the input plugin: it records events and fails
// the first busy screenshots with sdk.ErrBusy.
type standInInput struct {
	mu   sync.Mutex
	sent []sdk.InputEvent
	busy int
}

func (p *standInInput) Send(_ context.Context, _ uint32, ev []sdk.InputEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, ev...)
	return nil
}

func (p *standInInput) Screenshot(context.Context, uint32) (sdk.Screenshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy > 0 {
		p.busy--
		return sdk.Screenshot{}, fmt.Errorf("QMP socket busy: %w", sdk.ErrBusy)
	}
	return sdk.Screenshot{PNG: []byte("\x89PNG"), Width: 640, Height: 480}, nil
}

const token = "client-test-token-0123"

func start(t *testing.T, in *standInInput) *Client {
	srv := httptest.NewServer(api.New(backend{in}, token, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return New(srv.URL, token, nil)
}

// TestClientAgainstTheServer: the client and the real server agree on
// paths, bodies, headers and errors.
func TestClientAgainstTheServer(t *testing.T) {
	ctx := context.Background()
	in := &standInInput{busy: 2}
	c := start(t, in)

	inst, err := c.Instances(ctx)
	if err != nil || len(inst) != 1 || inst[0].Name != "c-0" || inst[0].State != "running" || inst[0].MAC == "" {
		t.Fatalf("instances: %+v %v", inst, err)
	}
	res, err := c.Input(ctx, "c-0", Press("f10"), Chord("ctrl", "alt", "delete"), Move(3, -4), Button("left", true), Button("left", false), Wheel(-1), KeyDown("a"), KeyUp("a"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 2+6+1+2+1+2 || len(in.sent) != res.Events {
		t.Errorf("input: %+v, plugin got %d events", res, len(in.sent))
	}
	if tr, err := c.Type(ctx, "0", "Hi"); err != nil || tr.Characters != 2 {
		t.Errorf("type: %+v %v", tr, err)
	}
	shot, err := c.Screenshot(ctx, "0")
	if err != nil || shot.Width != 640 || shot.Height != 480 {
		t.Errorf("screenshot (after %d busy answers, retried): %+v %v", 2, shot, err)
	}
	_, err = c.Input(ctx, "c-9", Press("a"))
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 404 || StatusOf(err) != 404 || ae.Message == "" {
		t.Errorf("unknown guest: %v", err)
	}
	if _, err := New(c.Base(), "wrong-token-0123456", nil).Instances(ctx); StatusOf(err) != 401 {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := c.LANStatus(ctx); StatusOf(err) != 404 {
		t.Errorf("no network plugin: %v", err)
	}
}
