package api

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorized accepts the token as a bearer header on every route. The
// query form (?token=) only where a browser cannot send a header: the
// dashboard's page and its modules, and a WebSocket upgrade. Anywhere else a
// token in the URL would let a page from another site, which cannot set the
// header without a CORS preflight this API never answers, drive the guests
// with a plain form POST.
func (s *Server) authorized(r *http.Request, rt route) bool {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	} else if queryTokenAllowed(r, rt) {
		got = r.URL.Query().Get("token")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// queryTokenAllowed says whether r may carry its token as ?token=: a GET
// of a route the table marks, and for the WebSocket only its upgrade.
func queryTokenAllowed(r *http.Request, rt route) bool {
	if !rt.queryToken || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	return !rt.stream || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// sameOrigin refuses a state-changing request (anything but GET, HEAD,
// OPTIONS) that a browser marks as coming from another origin
// (Sec-Fetch-Site, else Origin against Host). Programs send neither header
// and pass; the WebSocket upgrade, a GET, checks its Origin itself.
func sameOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: only pages served by this API and programs (no Origin header) may change anything")
	}))
	return cop.Handler(next)
}
