package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTokenPlacesAndCrossOrigin: the query token opens only the dashboard,
// its modules and the WebSocket; a cross-site form POST with the token in
// its URL, or any state-changing request a browser marks as cross-origin,
// never reaches a handler. Programs (no Origin) are unaffected.
func TestTokenPlacesAndCrossOrigin(t *testing.T) {
	srv := newTestServer(t)
	q := "?token=" + token
	cases := []struct {
		name, method, path string
		header             map[string]string
		code               int
		want               string
	}{
		{"dashboard page by query", "GET", "/" + q, nil, 200, "<html"},
		{"dashboard module by query", "GET", "/ui/app.js" + q, nil, 200, "fetch"},
		{"WebSocket upgrade by query", "GET", "/api/instances/0/input/ws" + q,
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, 404, "no input plugin"},
		{"read route by query", "GET", "/api/instances" + q, nil, 401, "missing or wrong token"},
		{"cross-site text/plain POST with the token in the URL", "POST", "/api/instances/0/type" + q,
			map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 401, "missing or wrong token"},
		{"POST by query without a browser's headers", "POST", "/api/instances/0/input" + q, nil, 401, "missing or wrong token"},
		{"cross-origin POST with the bearer header", "POST", "/api/instances/0/input",
			map[string]string{"Authorization": "Bearer " + token, "Origin": "http://evil.example"}, 403, "cross-origin request refused"},
		{"cross-site DELETE by Sec-Fetch-Site", "DELETE", "/api/instances/0/whep/abc",
			map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin request refused"},
		{"same-origin POST from the dashboard", "POST", "/api/instances/0/input",
			map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "same-origin"}, 404, "no input plugin"},
		{"program's POST (no Origin)", "POST", "/api/instances/0/input",
			map[string]string{"Authorization": "Bearer " + token}, 404, "no input plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"events": [{"chord": ["a"]}]}`))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Errorf("%s %s: %d %.300s; want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.want)
			}
		})
	}
}
