// Package api serves the core's HTTP API: instances, events, LAN status and
// Prometheus metrics, behind a bearer token, on loopback unless told
// otherwise. Errors are JSON with a 4xx or 5xx status.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/locolan/loco/core/supervise"
)

// Server is the API server.
type Server struct {
	b     Backend
	token string
	log   *slog.Logger
	mux   *http.ServeMux
	// handler is mux behind the cross-origin check (auth.go).
	handler http.Handler
	// Limits apply from the next Serve; New sets DefaultLimits.
	Limits Limits
	// table is routes() by mux pattern, for what ServeHTTP checks first.
	table   map[string]route
	reqs    *requestMetrics // reqmetrics.go
	metrics http.Handler    // metrics.go
}

// New makes a server; token is required on every request.
func New(b Backend, token string, log *slog.Logger) *Server {
	s := &Server{b: b, token: token, log: log, mux: http.NewServeMux()}
	s.handler = sameOrigin(s.mux)
	s.Limits = DefaultLimits
	reg, metrics := newMetrics(b, log) // metrics.go
	s.reqs, s.metrics = newRequestMetrics(reg), metrics
	s.register() // routes.go
	return s
}

// Handle adds an ordinary route (request deadline, header token only) to
// the table, for tests.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.table[pattern] = route{h: h}
}

// ServeHTTP sets the request's deadlines, checks the token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, done := s.track(w, r)
	defer done()
	rt, inTable := s.routeFor(r)
	if inTable {
		// Every route of the table, 404s and 405s included. A pattern put
		// on the mux outside the table keeps none: it may be a stream.
		s.deadlines(w, rt)
	}
	if !s.authorized(r, rt) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loco"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> (see `loco status` for where the token is)")
		return
	}
	s.handler.ServeHTTP(w, r)
}

// Serve serves on lis until ctx ends. The caller listens first, so a busy
// port is reported before any guest boots.
func (s *Server) Serve(ctx context.Context, lis net.Listener) <-chan error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: s.Limits.ReadHeader, IdleTimeout: s.Limits.Idle, MaxHeaderBytes: 64 << 10}
	if s.Limits.MaxConns > 0 {
		lis = &capListener{Listener: lis, max: s.Limits.MaxConns}
	}
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
	p := s.b.Network()
	if p == nil {
		writeError(w, http.StatusNotFound, noNetworkPlugin)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := p.LANStatus(ctx)
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
