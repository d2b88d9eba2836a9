package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// standInInput stands in for the input plugin at the API's InputPlugin
// seam (the real plugin behind it is tested end to end in cmd/loco): it
// records what reaches it and answers with err.
type standInInput struct {
	mu   sync.Mutex
	sent map[uint32][]sdk.InputEvent
	err  error
}

func (p *standInInput) Send(_ context.Context, instance uint32, events []sdk.InputEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.sent == nil {
		p.sent = map[uint32][]sdk.InputEvent{}
	}
	p.sent[instance] = append(p.sent[instance], events...)
	return nil
}

func (p *standInInput) Screenshot(context.Context, uint32) (sdk.Screenshot, error) {
	return sdk.Screenshot{}, fmt.Errorf("guest is paused: %w", sdk.ErrGuestNotRunning)
}

func (p *standInInput) take(i uint32) []sdk.InputEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.sent[i]
	delete(p.sent, i)
	return ev
}

// TestInputDelivery: what the input routes hand the input plugin, and how
// instance ids, states and the plugin's errors come back, with a stand-in
// plugin behind the narrow interface.
func TestInputDelivery(t *testing.T) {
	in := &standInInput{}
	b := staticBackend{
		plan: &plan.Plan{Accel: "tcg", Guests: []plan.Guest{{Index: 0, Name: "t-0"}, {Index: 1, Name: "t-1"}}},
		guests: []supervise.GuestStatus{
			{Index: 0, Name: "t-0", State: supervise.Running, PID: os.Getpid(), Started: time.Now()},
			{Index: 1, Name: "t-1", State: supervise.Restarting, Restarts: 1},
		},
		input: in,
	}
	srv := httptest.NewServer(New(b, token, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	post := func(path, body string) (int, string) { return callAPI(t, "POST", srv.URL+path, token, body) }

	t.Run(`{"key": "f10"} is a press and a release`, func(t *testing.T) {
		code, body := post("/api/instances/t-0/input", `{"events":[{"key":"f10"}]}`)
		got := in.take(0)
		if code != 200 || len(got) != 2 || got[0].Key == nil || got[0].Key.QCode != "f10" || !got[0].Key.Down || got[1].Key == nil || got[1].Key.Down {
			t.Errorf("%d %s; delivered %+v, want f10 down then up", code, body, got)
		}
	})
	t.Run("key object still works", func(t *testing.T) {
		if code, body := post("/api/instances/0/input", `{"events":[{"key":{"qcode":"a","down":true}}]}`); code != 200 || len(in.take(0)) != 1 {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("one id parser", func(t *testing.T) {
		for _, id := range []string{"+1", "01", "1.0", " 1", "-0", "2", "t-9"} {
			for _, path := range []string{"/input", "/whep"} {
				code, body := post("/api/instances/"+strings.ReplaceAll(id, " ", "%20")+path, `{"events":[{"key":"a"}]}`)
				if code != 404 || !strings.Contains(body, "no instance") {
					t.Errorf("id %q on %s: %d %s, want 404 no instance", id, path, code, body)
				}
			}
		}
	})
	t.Run("a long id is not echoed whole", func(t *testing.T) {
		long := strings.Repeat("x", 100<<10)
		code, body := post("/api/instances/"+long+"/input", `{"events":[{"key":"a"}]}`)
		if code != 404 || len(body) > 400 {
			t.Errorf("%d, %d bytes of answer: %.200s", code, len(body), body)
		}
	})
	t.Run("a restarting guest is a 409 that says so", func(t *testing.T) {
		code, body := post("/api/instances/1/type", `{"text":"hi"}`)
		if code != 409 || !strings.Contains(body, "restarting") || len(in.take(1)) != 0 {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("the plugin's sentinel maps to its status", func(t *testing.T) {
		in.err = fmt.Errorf("sending: %w", &sdk.RemoteError{Kind: sdk.ErrGuestNotRunning, Message: "guest t-0 is paused"})
		defer func() { in.err = nil }()
		if code, body := post("/api/instances/0/input", `{"events":[{"key":"a"}]}`); code != 409 || !strings.Contains(body, "paused") {
			t.Errorf("%d %s", code, body)
		}
		if code, body := callAPI(t, "GET", srv.URL+"/api/instances/0/screenshot", token, ""); code != 409 {
			t.Errorf("screenshot: %d %s", code, body)
		}
	})
}
