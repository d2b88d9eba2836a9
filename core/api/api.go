// Package api serves the core's HTTP API: instances, events, LAN status and
// Prometheus metrics, behind a bearer token, on loopback unless told
// otherwise. Errors are JSON with a 4xx or 5xx status.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/pluginhost"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// Backend is the running cluster the API describes.
type Backend interface {
	Plan() *plan.Plan
	Guests() []supervise.GuestStatus
	Events() []supervise.Event
	Plugins() *pluginhost.Set
}

// Server is the API server.
type Server struct {
	b     Backend
	token string
	log   *slog.Logger
	mux   *http.ServeMux
}

// New makes a server; token is required on every request.
func New(b Backend, token string, log *slog.Logger) *Server {
	s := &Server{b: b, token: token, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /api/instances", s.instances)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.HandleFunc("GET /api/lan-status", s.lanStatus)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.lanRoutes()    // GET /api/lan/capture (lan.go)
	s.streamRoutes() // WHEP, /api/streams and the dashboard (whep.go)
	s.viewerRoutes() // every stream backend: /stream, RFB WebSocket, pairing (viewers.go)
	s.registerInput()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handle adds a route, for the parts of the API other packages serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP checks the token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loco"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> (see `loco status` for where the token is)")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized accepts the token as a bearer header, or as ?token= for the
// browser's first page load and WebSockets, which cannot set headers.
func (s *Server) authorized(r *http.Request) bool {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	} else if q := r.URL.Query().Get("token"); q != "" {
		got = q
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// Serve serves on lis until ctx ends. The caller listens first, so a busy
// port is reported before any guest boots.
func (s *Server) Serve(ctx context.Context, lis net.Listener) <-chan error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(lis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return done
}

// Instance is a guest as the API shows it.
type Instance struct {
	Index      int     `json:"index"`
	Name       string  `json:"name"`
	State      string  `json:"state"`
	PID        int     `json:"pid"`
	Accel      string  `json:"accel"`
	MAC        string  `json:"mac"`
	Uptime     float64 `json:"uptime_seconds"`
	Restarts   int     `json:"restarts"`
	Reattached bool    `json:"reattached"`
	LastExit   string  `json:"last_exit,omitempty"`
	MemoryMiB  int     `json:"memory_mib"`
	// Addresses are the guest's IPs as the network plugin saw them.
	Addresses []string `json:"addresses"`
	// Pointer is "ps2" (relative motion only) or "tablet" (absolute too).
	Pointer string `json:"pointer"`
}

func (s *Server) instances(w http.ResponseWriter, r *http.Request) {
	p := s.b.Plan()
	addrs := s.addresses(r.Context())
	out := []Instance{}
	for _, g := range s.b.Guests() {
		in := Instance{Index: g.Index, Name: g.Name, State: string(g.State), PID: g.PID, Restarts: g.Restarts,
			Reattached: g.Reattached, LastExit: g.LastExit, Addresses: append([]string{}, addrs[g.Index]...)}
		if g.State == supervise.Running {
			in.Uptime = time.Since(g.Started).Round(time.Second).Seconds()
		}
		if p != nil && g.Index < len(p.Guests) {
			pg := p.Guests[g.Index]
			in.Accel, in.MAC, in.MemoryMiB, in.Pointer = p.Accel, pg.MAC, pg.MemoryMiB, pg.Pointer
		}
		out = append(out, in)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) events(w http.ResponseWriter, _ *http.Request) {
	ev := s.b.Events()
	if ev == nil {
		ev = []supervise.Event{}
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *Server) lanStatus(w http.ResponseWriter, r *http.Request) {
	p := s.b.Plugins().Get(sdk.KindNetwork)
	if p == nil {
		writeError(w, http.StatusNotFound, "this cluster has no network plugin")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := p.Client().LANStatus(ctx)
	if err != nil {
		writePluginError(w, r, "network", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError answers with {"error": "..."}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
