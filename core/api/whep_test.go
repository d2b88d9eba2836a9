package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func whepDo(t *testing.T, method, url, tok, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestWHEPErrors: the WHEP proxy's answers without a stream plugin, with
// a wrong body type and for unknown guests are JSON errors.
func TestWHEPErrors(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, method, path, tok, ctype string
		code                           int
		body                           string
	}{
		{"no token", "POST", "/api/instances/0/whep", "", "application/sdp", 401, "missing or wrong token"},
		{"not SDP", "POST", "/api/instances/0/whep", token, "application/json", 415, "application/sdp"},
		{"unknown guest", "POST", "/api/instances/7/whep", token, "application/sdp", 404, `no instance \"7\"`},
		{"no stream plugin", "POST", "/api/instances/t-1/whep", token, "application/sdp", 404, "no stream plugin"},
		{"hang up without a plugin", "DELETE", "/api/instances/0/whep/abc", token, "", 404, "no stream plugin"},
		{"trickle", "PATCH", "/api/instances/0/whep/abc", token, "application/trickle-ice-sdpfrag", 405, "trickle ICE"},
		{"stats without a plugin", "GET", "/api/streams", token, "", 404, "no stream plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := whepDo(t, tc.method, srv.URL+tc.path, tc.tok, tc.ctype, "v=0\r\n")
			var e struct{ Error string }
			if resp.StatusCode != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, strings.ReplaceAll(tc.body, `\"`, `"`)) {
				t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
			}
		})
	}
}

// TestDashboardPage: the page needs the token, carries it into every module
// URL through its import map, and is locked down by its headers.
func TestDashboardPage(t *testing.T) {
	srv := newTestServer(t)
	if resp, _ := whepDo(t, "GET", srv.URL+"/", "", "", ""); resp.StatusCode != 401 {
		t.Errorf("page without a token: %d", resp.StatusCode)
	}
	resp, body := whepDo(t, "GET", srv.URL+"/?token="+token, "", "", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<script type="importmap"`, `"/ui/app.js":"/ui/app.js?token=` + token, `"/ui/whep.js":"/ui/whep.js?token=` + token, `src="/ui/app.js?token=` + token} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self' 'nonce-") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", resp.Header)
	}
	resp, js := whepDo(t, "GET", srv.URL+"/ui/app.js?token="+token, "", "", "")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(js, "WhepStream") {
		t.Errorf("app.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := whepDo(t, "GET", srv.URL+"/ui/app.js", "", "", ""); resp.StatusCode != 401 {
		t.Errorf("module without a token: %d", resp.StatusCode)
	}
	if resp, _ := whepDo(t, "GET", srv.URL+"/ui/?token="+token, "", "", ""); resp.StatusCode != 404 {
		t.Errorf("directory listing: %d", resp.StatusCode)
	}
}
