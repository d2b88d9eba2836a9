package api

import (
	"strings"
	"testing"
)

// The capture itself runs against the real plugin in cmd/loco's LAN e2e
// test; these are the answers that need no plugin.
func TestLANCaptureWithoutANetworkPlugin(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, tok string
		code      int
		want      string
	}{
		{"no token", "", 401, "missing or wrong token"},
		{"no network plugin", token, 404, "this cluster has no network plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.URL+"/api/lan/capture?instance=t-1&duration=1s", tc.tok)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s, want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
}
