package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/supervise"
)

// staticBackend stands in for a running cluster; the real one
// (core/cluster) is exercised through the API in cmd/loco's e2e tests.
// Its plugins are nil (none in the spec) unless a test sets a stand-in.
type staticBackend struct {
	plan   *plan.Plan
	guests []supervise.GuestStatus
	input  InputPlugin
}

func (b staticBackend) Plan() *plan.Plan                { return b.plan }
func (b staticBackend) Guests() []supervise.GuestStatus { return b.guests }
func (b staticBackend) Events() []supervise.Event       { return nil }
func (b staticBackend) Network() NetworkPlugin          { return nil }
func (b staticBackend) Input() InputPlugin              { return b.input }
func (b staticBackend) Stream() StreamPlugin            { return nil }
func (b staticBackend) Plugins() []PluginProcess        { return nil }

const token = "0123456789abcdef0123"

func newTestServer(t *testing.T) *httptest.Server {
	b := staticBackend{
		plan: &plan.Plan{Accel: "tcg", Guests: []plan.Guest{{Index: 0, Name: "t-0", MAC: "52:00:00:00:00:00", MemoryMiB: 128}, {Index: 1, Name: "t-1"}}},
		guests: []supervise.GuestStatus{
			// This test process plays guest 0, so metrics read real /proc values.
			{Index: 0, Name: "t-0", State: supervise.Running, PID: os.Getpid(), Started: time.Now().Add(-time.Minute)},
			{Index: 1, Name: "t-1", State: supervise.Restarting, Restarts: 2, LastExit: "signal: killed"},
		},
	}
	srv := httptest.NewServer(New(b, token, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, tok string) (int, string) { return callAPI(t, "GET", url, tok, "") }

func TestAuthAndErrors(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, path, token string
		code              int
		body              string
	}{
		{"no token", "/api/instances", "", 401, `"error": "missing or wrong token`},
		{"wrong token", "/api/instances", "nope", 401, `"error"`},
		{"query token only where a browser needs it", "/api/instances?token=" + token, "", 401, `"error"`},
		{"unknown endpoint", "/api/nope", token, 404, `"error": "no such endpoint: GET /api/nope"`},
		{"no network plugin", "/api/lan-status", token, 404, `"error": "this cluster has no network plugin"`},
		{"unknown endpoint needs the token too", "/api/nope", "", 401, `"error"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tc.path, tc.token)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("%s: %d %s; want %d with %q", tc.path, code, body, tc.code, tc.body)
			}
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Errorf("body is not JSON: %v", err)
			}
		})
	}
}

func TestInstances(t *testing.T) {
	srv := newTestServer(t)
	_, body := get(t, srv.URL+"/api/instances", token)
	var got []Instance
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Accel != "tcg" || got[0].MAC != "52:00:00:00:00:00" || got[0].Uptime < 59 || got[0].State != "running" {
		t.Errorf("instance 0: %+v", got[0])
	}
	if got[1].State != "restarting" || got[1].Restarts != 2 || got[1].Uptime != 0 || got[1].LastExit == "" {
		t.Errorf("instance 1: %+v", got[1])
	}
}
