package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
)

// TestRFBDialStaysInTheGuest: the WebSocket reaches only a unix socket in
// the guest's own directory, whatever the plugin names.
func TestRFBDialStaysInTheGuest(t *testing.T) {
	dir := "/state/c/guests/1"
	cases := []struct {
		dial string
		ok   bool
	}{
		{"unix:/state/c/guests/1/vnc.sock", true},
		{"unix:/state/c/guests/1/sub/proxy.sock", true},
		{"unix:/state/c/guests/0/vnc.sock", false},
		{"unix:/state/c/guests/1/../0/vnc.sock", false},
		{"unix:/state/c/guests/10/vnc.sock", false},
		{"unix:/state/c/guests/1", false},
		{"unix:vnc.sock", false},
		{"127.0.0.1:5901", false},
	}
	for _, tc := range cases {
		got, err := rfbDial([]sdk.Endpoint{{Protocol: sdk.ProtocolWHEP}, {Protocol: sdk.ProtocolRFB, Dial: tc.dial}}, dir)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %q %v, want ok=%v", tc.dial, got, err, tc.ok)
		}
	}
	if _, err := rfbDial([]sdk.Endpoint{{Protocol: sdk.ProtocolWHEP}}, dir); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("no RFB endpoint: %v, want ErrUnsupported", err)
	}
}

// TestViewerRoutesErrors: the routes' answers without a stream plugin and
// for bad requests are JSON errors, and all want the token.
func TestViewerRoutesErrors(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, method, path, tok, body string
		code                          int
		want                          string
	}{
		{"stream without a token", "GET", "/api/instances/0/stream", "", "", 401, "missing or wrong token"},
		{"rfb without a token", "GET", "/api/instances/0/rfb", "", "", 401, "missing or wrong token"},
		{"pair without a token", "POST", "/api/instances/0/pair", "", `{"pin":"1234"}`, 401, "missing or wrong token"},
		{"stream of an unknown guest", "GET", "/api/instances/9/stream", token, "", 404, `no instance \"9\"`},
		{"stream without a plugin", "GET", "/api/instances/t-1/stream", token, "", 404, "no stream plugin"},
		{"rfb without an upgrade", "GET", "/api/instances/0/rfb", token, "", 400, "WebSocket endpoint"},
		{"pair with a bad PIN", "POST", "/api/instances/0/pair", token, `{"pin":"12a4"}`, 400, "four digits"},
		{"pair with no JSON", "POST", "/api/instances/0/pair", token, `pin=1234`, 400, "want {"},
		{"pair without a plugin", "POST", "/api/instances/0/pair", token, `{"pin":"1234"}`, 404, "no stream plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := whepDo(t, tc.method, srv.URL+tc.path, tc.tok, "application/json", tc.body)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.want)
			}
		})
	}
}

// TestNoVNCServed: the page maps noVNC's modules (Debian's novnc package)
// with the token, and only its client modules are served.
func TestNoVNCServed(t *testing.T) {
	srv := newTestServer(t)
	_, page := whepDo(t, "GET", srv.URL+"/?token="+token, "", "", "")
	if !strings.Contains(page, `"/ui/novnc/core/rfb.js":"/ui/novnc/core/rfb.js?token=`+token) ||
		!strings.Contains(page, `"/ui/novnc/vendor/pako/lib/zlib/inflate.js":`) {
		t.Fatalf("the import map lacks noVNC's modules (is Debian's novnc installed?):\n%s", page)
	}
	if resp, js := whepDo(t, "GET", srv.URL+"/ui/novnc/core/rfb.js?token="+token, "", "", ""); resp.StatusCode != 200 || !strings.Contains(js, "export default class RFB") {
		t.Errorf("rfb.js: %d", resp.StatusCode)
	}
	for _, p := range []string{"/ui/novnc/vnc.html", "/ui/novnc/core/../vnc.html", "/ui/novnc/app/ui.js", "/ui/novnc/core/nope.js"} {
		if resp, _ := whepDo(t, "GET", srv.URL+p+"?token="+token, "", "", ""); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := whepDo(t, "GET", srv.URL+"/ui/novnc/core/rfb.js", "", "", ""); resp.StatusCode != 401 {
		t.Errorf("noVNC without the token: %d", resp.StatusCode)
	}
}
