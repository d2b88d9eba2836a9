package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/locolan/loco/core/web"
)

// route is one endpoint of the API. The table below is the only place
// routes are registered; the docs-drift test walks it.
type route struct {
	method, path string
	h            http.Handler
	// stream: the answer may last as long as the client wants, so the
	// per-request deadline (limits.go) does not apply.
	stream bool
	// queryToken: a browser reaches it without being able to send the
	// Authorization header (a page load, a module import, a WebSocket),
	// so ?token= is accepted (auth.go).
	queryToken bool
	// undocumented: not an API endpoint (the dashboard's page and files).
	undocumented bool
}

// routes is the API, one line per endpoint. Add new ones here; keep one
// line each so that parallel additions merge.
func (s *Server) routes() []route {
	f := func(h http.HandlerFunc) http.Handler { return h }
	return []route{
		{method: "GET", path: "/api/instances", h: f(s.instances)},
		{method: "GET", path: "/api/events", h: f(s.events)},
		{method: "GET", path: "/api/lan-status", h: f(s.lanStatus)},
		{method: "GET", path: "/api/lan/capture", h: f(s.lanCapture), stream: true},
		{method: "GET", path: "/metrics", h: s.metrics},
		{method: "POST", path: "/api/instances/{id}/input", h: f(s.postInput)},
		{method: "POST", path: "/api/instances/{id}/type", h: f(s.postType)},
		{method: "GET", path: "/api/instances/{id}/screenshot", h: f(s.getScreenshot)},
		{method: "GET", path: "/api/instances/{id}/input/ws", h: f(s.inputWS), stream: true, queryToken: true},
		{method: "POST", path: "/api/instances/{id}/whep", h: f(s.whepOffer)},
		{method: "DELETE", path: "/api/instances/{id}/whep/{session}", h: f(s.whepHangup)},
		{method: "GET", path: "/api/streams", h: f(s.streamStats)},
		{method: "GET", path: "/api/instances/{id}/stream", h: f(s.streamEndpoints)},
		{method: "GET", path: "/api/instances/{id}/rfb", h: f(s.rfbProxy), stream: true, queryToken: true},
		{method: "POST", path: "/api/instances/{id}/pair", h: f(s.pair)},
		{method: "GET", path: "/{$}", h: web.Index(s.token), queryToken: true, undocumented: true},
		{method: "GET", path: "/ui/", h: web.Static(), queryToken: true, undocumented: true},
		{method: "GET", path: "/ui/novnc/", h: web.NoVNC(), queryToken: true, undocumented: true},
	}
}

// register puts the table on the mux. Each path also answers the methods it
// does not take with a JSON 405 and Allow (the mux alone answers in plain
// text), and anything else is a JSON 404.
func (s *Server) register() {
	s.table = map[string]route{}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range s.routes() {
		pattern := rt.method + " " + rt.path
		s.mux.Handle(pattern, rt.h)
		s.table[pattern] = rt
		if strings.HasSuffix(rt.path, "/") {
			// A file tree (the dashboard's): a method-less 405 pattern
			// for one subtree would clash with a method pattern of the
			// tree above it (/ui/novnc/ under GET /ui/); other methods
			// get the JSON 404.
			continue
		}
		if _, seen := allow[rt.path]; !seen {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	for _, path := range paths {
		methods := fmt.Sprint(allow[path])
		methods = methods[1 : len(methods)-1]
		notAllowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			msg := fmt.Sprintf("%s %s: this endpoint takes %s", r.Method, shorten(r.URL.Path), methods)
			if path == "/api/instances/{id}/whep/{session}" && r.Method == http.MethodPatch {
				msg = "trickle ICE is not supported: the answer already carries every candidate"
			}
			writeError(w, http.StatusMethodNotAllowed, msg)
		})
		s.mux.Handle(path, notAllowed)
		s.table[path] = route{h: notAllowed, undocumented: true}
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, shorten(r.URL.Path)))
	})
	s.mux.Handle("/", notFound)
	s.table["/"] = route{h: notFound, undocumented: true}
}

// routeFor is the table's route that r goes to, if any.
func (s *Server) routeFor(r *http.Request) (route, bool) {
	_, pattern := s.mux.Handler(r)
	rt, ok := s.table[pattern]
	return rt, ok
}

// shorten keeps what an error message quotes of a client's input short: a
// 100 KB id is not echoed back whole.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// instance resolves {id}: a guest's index, written as the API writes it
// (0, 1, ...: no sign, no leading zeros), or its name. It is the one
// parser for every route that names a guest.
func (s *Server) instance(id string) (int, error) {
	p := s.b.Plan()
	n := 0
	if p != nil {
		n = len(p.Guests)
		if i, err := strconv.Atoi(id); err == nil && strconv.Itoa(i) == id && i >= 0 && i < n {
			return i, nil
		}
		for i, g := range p.Guests {
			if g.Name == id {
				return i, nil
			}
		}
	}
	hint := "the cluster has no guests"
	if n > 0 {
		hint = fmt.Sprintf("use an index from 0 to %d or a name like %q", n-1, p.Guests[0].Name)
	}
	return 0, fmt.Errorf("no instance %q: %s", shorten(id), hint)
}
