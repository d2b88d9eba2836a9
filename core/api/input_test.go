package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/input"
)

func callAPI(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInputErrors: every way a request can be wrong gets its status and a
// JSON error that says what was wrong. The backend has no input plugin, so
// a well-formed request ends at "no input plugin"; delivery through the
// real plugin is tested end to end in cmd/loco.
func TestInputErrors(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, method, path, tok, body string
		code                          int
		want                          string
	}{
		{"wrong token", "POST", "/api/instances/0/input", "nope", `{"events":[]}`, 401, "missing or wrong token"},
		{"no token on the WebSocket", "GET", "/api/instances/0/input/ws", "", "", 401, "missing or wrong token"},
		{"invalid JSON", "POST", "/api/instances/0/input", token, `{"events":[{"key":`, 400, "invalid JSON: it ends too early"},
		{"not JSON", "POST", "/api/instances/0/input", token, `key a`, 400, "invalid JSON at byte 1"},
		{"empty body", "POST", "/api/instances/0/input", token, ``, 400, "empty, expected JSON"},
		{"no events field", "POST", "/api/instances/0/input", token, `{}`, 400, `"events" is missing`},
		{"unknown top-level field", "POST", "/api/instances/0/input", token, `{"events":[],"speed":1}`, 400, `unknown field "speed"`},
		{"no events", "POST", "/api/instances/0/input", token, `{"events":[]}`, 400, "no events"},
		{"unknown key", "POST", "/api/instances/0/input", token, `{"events":[{"key":{"qcode":"entr","down":true}}]}`, 400, `event 0: unknown key "entr" (did you mean "enter"?)`},
		{"key without down", "POST", "/api/instances/0/input", token, `{"events":[{"key":{"qcode":"a"}}]}`, 400, `key needs "qcode" and "down"`},
		{"wrong type", "POST", "/api/instances/0/input", token, `{"events":[{"key":{"qcode":"a","down":"yes"}}]}`, 400, "key.down: got a JSON string, want true or false"},
		{"unknown event field", "POST", "/api/instances/0/input", token, `{"events":[{"click":{}}]}`, 400, `event 0: unknown field "click"`},
		{"two kinds in one event", "POST", "/api/instances/0/input", token, `{"events":[{"rel":{"dx":1},"wheel":{"delta":1}}]}`, 400, "this one has rel and wheel"},
		{"abs out of range", "POST", "/api/instances/0/input", token, `{"events":[{"abs":{"x":100,"y":40000}}]}`, 400, "abs.y = 40000 is out of range 0..32767"},
		{"abs negative", "POST", "/api/instances/0/input", token, `{"events":[{"rel":{"dx":1}},{"abs":{"x":-1,"y":0}}]}`, 400, "event 1: abs.x = -1 is out of range"},
		{"abs missing y", "POST", "/api/instances/0/input", token, `{"events":[{"abs":{"x":1}}]}`, 400, "abs.y is missing"},
		{"abs beyond int32", "POST", "/api/instances/0/input", token, `{"events":[{"abs":{"x":99999999999,"y":0}}]}`, 400, "abs.x = 99999999999 is not a whole number in range"},
		{"fractional motion", "POST", "/api/instances/0/input", token, `{"events":[{"rel":{"dx":1.5}}]}`, 400, "rel.dx = 1.5 is not a whole number"},
		{"rel too far", "POST", "/api/instances/0/input", token, `{"events":[{"rel":{"dx":5000,"dy":0}}]}`, 400, "rel.dx = 5000 is out of range"},
		{"unknown button", "POST", "/api/instances/0/input", token, `{"events":[{"button":{"button":"back","down":true}}]}`, 400, `button "back"`},
		{"bad chord", "POST", "/api/instances/0/input", token, `{"events":[{"chord":["ctrl","alt","dle"]}]}`, 400, `unknown key "dle"`},
		{"text in a batch the keymap lacks", "POST", "/api/instances/0/input", token, `{"events":[{"text":"naïve"}]}`, 400, `character 'ï' (U+00EF) at position 2 has no key on a US keyboard`},
		{"type: unsupported character", "POST", "/api/instances/0/type", token, `{"text":"Grüße"}`, 400, "position 2 has no key on a US keyboard"},
		{"type: no text", "POST", "/api/instances/0/type", token, `{"txt":"hi"}`, 400, `unknown field "txt"`},
		{"type: empty text", "POST", "/api/instances/0/type", token, `{"text":""}`, 400, `"text" is missing or empty`},
		{"type: too long", "POST", "/api/instances/0/type", token, `{"text":"` + strings.Repeat("a", MaxTextChars+1) + `"}`, 400, "send at most 2000"},
		{"too many events", "POST", "/api/instances/0/input", token, `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"chord":["a"]},`, MaxBatch/2+1), ",") + `]}`, 400, "more than 5000"},
		{"unknown instance", "POST", "/api/instances/7/input", token, `{"events":[{"chord":["a"]}]}`, 404, `no instance "7": use an index from 0 to 1 or a name like "t-0"`},
		{"unknown instance name", "GET", "/api/instances/t-9/screenshot", token, ``, 404, `no instance "t-9"`},
		{"guest not running", "POST", "/api/instances/t-1/input", token, `{"events":[{"chord":["a"]}]}`, 409, "guest t-1 is restarting, not running (last exit: signal: killed)"},
		{"guest not running, typing", "POST", "/api/instances/1/type", token, `{"text":"hi"}`, 409, "guest t-1 is restarting"},
		{"guest not running, screenshot", "GET", "/api/instances/1/screenshot", token, ``, 409, "guest t-1 is restarting"},
		{"no input plugin", "POST", "/api/instances/0/input", token, `{"events":[{"chord":["ctrl","alt","delete"]}]}`, 404, `this cluster has no input plugin: add input "qmp" {}`},
		{"no input plugin, screenshot", "GET", "/api/instances/t-0/screenshot", token, ``, 404, "no input plugin"},
		{"no input plugin, WebSocket", "GET", "/api/instances/0/input/ws", token, ``, 404, "no input plugin"},
		{"wrong method", "GET", "/api/instances/0/input", token, ``, 405, "GET /api/instances/0/input: this endpoint takes POST"},
		{"wrong method on screenshot", "DELETE", "/api/instances/0/screenshot", token, ``, 405, "takes GET"},
		{"too large", "POST", "/api/instances/0/input", token, `{"events":"` + strings.Repeat("x", maxBody) + `"}`, 413, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := callAPI(t, tc.method, srv.URL+tc.path, tc.tok, tc.body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("%d, body is not a JSON error: %v\n%s", code, err, body)
			}
			if code != tc.code || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%d %q\nwant %d with %q", code, e.Error, tc.code, tc.want)
			}
		})
	}
}

func TestDecodeInput(t *testing.T) {
	key := func(q string, down bool) sdk.InputEvent {
		return sdk.InputEvent{Key: &sdk.KeyEvent{QCode: q, Down: down}}
	}
	cases := []struct {
		name, body string
		want       []sdk.InputEvent
	}{
		{"key by qcode", `{"events":[{"key":{"qcode":"ret","down":true}}]}`, []sdk.InputEvent{key("ret", true)}},
		{"key by alias", `{"events":[{"key":{"qcode":"Enter","down":false}}]}`, []sdk.InputEvent{key("ret", false)}},
		{"chord", `{"events":[{"chord":["ctrl","alt","del"]}]}`, []sdk.InputEvent{key("ctrl", true), key("alt", true),
			key("delete", true), key("delete", false), key("alt", false), key("ctrl", false)}},
		{"text", `{"events":[{"text":"A"}]}`, []sdk.InputEvent{key("shift", true), key("a", true), key("a", false), key("shift", false)}},
		{"rel with one axis", `{"events":[{"rel":{"dy":-3}}]}`, []sdk.InputEvent{{Rel: &sdk.RelEvent{DY: -3}}}},
		{"abs as floats that are whole", `{"events":[{"abs":{"x":1e2,"y":3.0}}]}`, []sdk.InputEvent{{Abs: &sdk.AbsEvent{X: 100, Y: 3}}}},
		{"button and wheel", `{"events":[{"button":{"button":"middle","down":true}},{"wheel":{"delta":-2}}]}`,
			[]sdk.InputEvent{{Button: &sdk.ButtonEvent{Button: "middle", Down: true}}, {Wheel: &sdk.WheelEvent{Delta: -2}}}},
		{"whitespace around", " \n{\"events\":[{\"chord\":[\"a\"]}]}\n ", []sdk.InputEvent{key("a", true), key("a", false)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeInput([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(tc.want)
				t.Errorf("\n got %s\nwant %s", a, b)
			}
		})
	}
}

func TestDecodeMessage(t *testing.T) {
	cases := []struct {
		msg     string
		n       int
		wantErr string
	}{
		{`{"key":{"qcode":"a","down":true}}`, 1, ""},
		{` [{"chord":["a"]},{"rel":{"dx":1,"dy":1}}]`, 3, ""},
		{`{"text":"hi"}`, 4, ""},
		{`[]`, 0, "no events"},
		{`null`, 0, "this one has none"},
		{`{"key":{"qcode":"a","down":true}} {}`, 0, "unexpected data after the JSON value"},
		{`[{"chord":["a"]}] x`, 0, "unexpected data"},
		{`{"events":[]}`, 0, `unknown field "events"`},
	}
	for _, tc := range cases {
		got, err := DecodeMessage([]byte(tc.msg))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.msg, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("%s: %d events, %v; want %d", tc.msg, len(got), err, tc.n)
		}
	}
}

// FuzzDecodeInput: whatever the body, the decoder does not panic, and what
// it accepts is a non-empty, bounded batch of events the plugin accepts
// too, which reads back the same when written as the API's JSON.
func FuzzDecodeInput(f *testing.F) {
	for _, seed := range []string{
		`{"events":[{"key":{"qcode":"a","down":true}}]}`,
		`{"events":[{"chord":["ctrl","alt","delete"]},{"text":"Hello, LAN!"}]}`,
		`{"events":[{"rel":{"dx":-5,"dy":7}},{"abs":{"x":0,"y":32767}},{"button":{"button":"left","down":false}},{"wheel":{"delta":3}}]}`,
		`{"events":[{"abs":{"x":1e4,"y":2.5}}]}`,
		`{"events":[null]}`, `{"events":[{"key":null}]}`, `[1,2]`, `{"events":{}}`, `{"events":[{"text":"\u00e9"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeInput(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no message")
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch {
			t.Fatalf("accepted a batch of %d events", len(evs))
		}
		for i, e := range evs {
			if err := input.Validate(e); err != nil {
				t.Fatalf("accepted event %d that the plugin would refuse: %v", i, err)
			}
		}
		again, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			t.Fatal(err)
		}
		evs2, err := DecodeInput(again)
		if err != nil || !reflect.DeepEqual(evs, evs2) {
			t.Fatalf("%s does not read back: %v", again, err)
		}
	})
}

func TestMergeMotion(t *testing.T) {
	rel := func(dx, dy int32) []sdk.InputEvent { return []sdk.InputEvent{{Rel: &sdk.RelEvent{DX: dx, DY: dy}}} }
	abs := func(x, y int32) []sdk.InputEvent { return []sdk.InputEvent{{Abs: &sdk.AbsEvent{X: x, Y: y}}} }
	key := []sdk.InputEvent{{Key: &sdk.KeyEvent{QCode: "a", Down: true}}}
	cases := []struct {
		name string
		a, b []sdk.InputEvent
		want []sdk.InputEvent // nil: not merged
	}{
		{"relative motions add up", rel(3, -4), rel(10, 2), rel(13, -2)},
		{"absolute: the later wins", abs(1, 2), abs(300, 400), abs(300, 400)},
		{"not beyond the relative range", rel(1000, 0), rel(100, 0), nil},
		{"never a key", rel(1, 1), key, nil},
		{"never after a key", key, rel(1, 1), nil},
		{"not across kinds", rel(1, 1), abs(1, 1), nil},
		{"not batches", append(rel(1, 1), rel(1, 1)...), rel(1, 1), nil},
	}
	for _, tc := range cases {
		got, ok := mergeMotion(tc.a, tc.b)
		if ok != (tc.want != nil) || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: %v %v", tc.name, got, ok)
		}
	}
}

// TestRoutesDocumented keeps docs/api.md and docs/openapi.yaml in step with
// every route of the table (routes.go), the one place routes are added.
func TestRoutesDocumented(t *testing.T) {
	md, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range (&Server{}).routes() {
		if rt.undocumented {
			continue
		}
		if doc := "`" + rt.method + " " + rt.path; !strings.Contains(string(md), doc+"`") && !strings.Contains(string(md), doc+"?") {
			t.Errorf("docs/api.md does not document `%s %s`", rt.method, rt.path)
		}
		if !strings.Contains(string(spec), "\n  "+rt.path+":\n") {
			t.Errorf("docs/openapi.yaml has no path %s", rt.path)
		}
	}
}

// TestPluginError feeds the mapping what the sdk client returns: the
// plugin's sentinel, wrapped by the client's own words.
func TestPluginError(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	wrap := func(kind error, msg string) error {
		return fmt.Errorf("sending input to instance 0: %w", &sdk.RemoteError{Kind: kind, Message: msg})
	}
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		code int
		msg  string
	}{
		{"bad event", live, wrap(sdk.ErrInvalid, "event 0: nope"), 400, "event 0: nope"},
		{"paused", live, wrap(sdk.ErrGuestNotRunning, "guest t-0 is paused"), 409, "guest t-0 is paused"},
		{"no instance", live, wrap(sdk.ErrNoInstance, "no instance 9"), 404, "no instance 9"},
		{"no session", live, wrap(sdk.ErrNotFound, "no session x"), 404, "no session x"},
		{"socket busy", live, wrap(sdk.ErrNotReady, "busy"), 503, "retry: busy"},
		{"viewers full", live, wrap(sdk.ErrBusy, "16 viewers"), 503, "16 viewers"},
		{"not offered", live, wrap(sdk.ErrUnsupported, "no capture"), 501, "no capture"},
		{"plugin being restarted", live, wrap(context.Canceled, "grpc: the client connection is closing"), 503, "restarting, retry"},
		{"caller gone", gone, wrap(context.Canceled, "context canceled"), 499, "context canceled"},
		{"QEMU slow", live, wrap(context.DeadlineExceeded, "no answer"), 504, "no answer"},
		{"plugin bug", live, wrap(nil, "boom"), 502, "input plugin: boom"},
		{"not from a plugin at all", live, errors.New("plain"), 502, "input plugin: plain"},
	}
	for _, tc := range cases {
		code, msg := pluginError(tc.ctx, "input", tc.err)
		if code != tc.code || !strings.Contains(msg, tc.msg) || strings.Contains(msg, "rpc error") {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
}
