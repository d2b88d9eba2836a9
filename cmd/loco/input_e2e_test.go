package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/sdk/qmp"
)

// inputCluster is a running cluster with the qmp input plugin, and its API.
type inputCluster struct {
	*e2e
	t     testing.TB
	name  string
	spec  string
	base  string
	token string
}

// startInputCluster boots n test guests with the input plugin. The kernel
// hides the VGA cursor: its blinking would change the screen on its own.
func startInputCluster(t testing.TB, name string, n int, extra string) *inputCluster {
	t.Helper()
	e := newE2E(t)
	spec := e.Spec(name, n, "  input \"qmp\" {}\n"+extra)
	src, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(spec, []byte(strings.Replace(string(src), "min_memory = 96", "min_memory = 96\n    append     = \"vt.global_cursor_default=0\"", 1)), 0o644)
	e.MustRun("run", "--detach", spec)
	for i := 0; i < n; i++ {
		e.WaitReady(name, i, 1)
	}
	base, token, err := cluster.APIEndpoint(filepath.Join(e.StateDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return &inputCluster{e2e: e, t: t, name: name, spec: spec, base: base, token: token}
}

// call makes an API request and returns the status and body.
func (c *inputCluster) call(method, path, token, body string) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// ok makes a request that must succeed.
func (c *inputCluster) ok(method, path, body string) []byte {
	c.t.Helper()
	code, b, _ := c.call(method, path, c.token, body)
	if code != http.StatusOK {
		c.t.Fatalf("%s %s %s: %d %s", method, path, body, code, b)
	}
	return b
}

// screenshotPNG fetches guest i's screen as the API serves it.
func (c *inputCluster) screenshotPNG(i int) []byte {
	c.t.Helper()
	code, b, h := c.call("GET", fmt.Sprintf("/api/instances/%d/screenshot", i), c.token, "")
	if code != http.StatusOK || h.Get("Content-Type") != "image/png" {
		c.t.Fatalf("screenshot: %d %s %s", code, h.Get("Content-Type"), b)
	}
	return b
}

func (c *inputCluster) screenshot(i int) (image.Image, []byte) {
	c.t.Helper()
	code, b, h := c.call("GET", fmt.Sprintf("/api/instances/%d/screenshot", i), c.token, "")
	if code != http.StatusOK || h.Get("Content-Type") != "image/png" {
		c.t.Fatalf("screenshot: %d %s %s", code, h.Get("Content-Type"), b)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		c.t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if w, _ := strconv.Atoi(h.Get("X-Loco-Width")); w != img.Bounds().Dx() {
		c.t.Errorf("X-Loco-Width %s, image %v", h.Get("X-Loco-Width"), img.Bounds())
	}
	return img, b
}

// guestEvent is one LOCO-INPUT line of the test agent: an evdev event.
type guestEvent struct {
	Type, Code, Value int
}

func (g guestEvent) String() string { return fmt.Sprintf("%d/%d/%d", g.Type, g.Code, g.Value) }

// serialSize marks where new serial output of guest i starts.
func (c *inputCluster) serialSize(i int) int64 {
	st, err := os.Stat(filepath.Join(c.GuestDir(c.name, i), "serial.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	return st.Size()
}

// eventsSince parses the input events guest i echoed after offset.
func (c *inputCluster) eventsSince(i int, offset int64) []guestEvent {
	b, _ := os.ReadFile(filepath.Join(c.GuestDir(c.name, i), "serial.log"))
	if offset > int64(len(b)) {
		offset = 0
	}
	var out []guestEvent
	sc := bufio.NewScanner(bytes.NewReader(b[offset:]))
	for sc.Scan() {
		line := sc.Text()
		at := strings.Index(line, "LOCO-INPUT ")
		if at < 0 {
			continue
		}
		var dev string
		var ev guestEvent
		if n, _ := fmt.Sscanf(line[at:], "LOCO-INPUT dev=%s type=%d code=%d value=%d", &dev, &ev.Type, &ev.Code, &ev.Value); n == 4 {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvents waits until guest i has echoed n events of the types given
// after offset, and returns them.
func (c *inputCluster) waitEvents(i int, offset int64, n int, types ...int) []guestEvent {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var got []guestEvent
		for _, ev := range c.eventsSince(i, offset) {
			for _, ty := range types {
				if ev.Type == ty {
					got = append(got, ev)
				}
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("guest %d echoed %d of %d events of types %v: %v", i, len(got), n, types, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitInputReady waits until guest i's agent echoes both a key and a mouse
// motion: the agent opens the input devices a little after LOCO-READY.
func (c *inputCluster) waitInputReady(i int) {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		off := c.serialSize(i)
		c.ok("POST", fmt.Sprintf("/api/instances/%d/input", i), `{"events":[{"chord":["shift"]},{"rel":{"dx":1,"dy":0}}]}`)
		time.Sleep(2 * time.Second)
		var key, mouse bool
		for _, ev := range c.eventsSince(i, off) {
			key = key || (ev.Type == evKey && ev.Code == 42)
			mouse = mouse || ev.Type == evRel
		}
		if key && mouse {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("guest %d's agent does not echo input: %v", i, c.eventsSince(i, off))
		}
	}
}

// Linux input event types and codes (input-event-codes.h): an oracle
// independent of loco's keymap.
const (
	evKey = 1
	evRel = 2
	evAbs = 3

	keyLeftShift = 42
	btnLeft      = 272
	relX, relY   = 0, 1
	relWheel     = 8
)

var linuxKeys = map[byte]int{'h': 35, 'e': 18, 'l': 38, 'o': 24, ',': 51, ' ': 57, 'a': 30, 'n': 49, '1': 2, 'k': 37}

// expectTyped is what a US keyboard sends for s: shifted characters wrapped
// in left shift. Only the characters the tests type are known.
func expectTyped(t testing.TB, s string) []guestEvent {
	var out []guestEvent
	for _, r := range s {
		c, shift := byte(r), false
		switch {
		case r >= 'A' && r <= 'Z':
			c, shift = byte(r-'A'+'a'), true
		case r == '!':
			c, shift = '1', true
		}
		code, ok := linuxKeys[c]
		if !ok {
			t.Fatalf("the test has no Linux key code for %q", r)
		}
		if shift {
			out = append(out, guestEvent{evKey, keyLeftShift, 1})
		}
		out = append(out, guestEvent{evKey, code, 1}, guestEvent{evKey, code, 0})
		if shift {
			out = append(out, guestEvent{evKey, keyLeftShift, 0})
		}
	}
	return out
}

func sameEvents(got, want []guestEvent) bool {
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// vncSize reads the screen size QEMU's VNC server announces for guest i:
// the guest's resolution as a second, independent witness.
func (c *inputCluster) vncSize(i int) (int, int) {
	c.t.Helper()
	conn, err := net.DialTimeout("unix", filepath.Join(c.GuestDir(c.name, i), "vnc.sock"), 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	version := make([]byte, 12)
	if _, err := io.ReadFull(r, version); err != nil {
		c.t.Fatal(err)
	}
	conn.Write([]byte("RFB 003.008\n"))
	n, _ := r.ReadByte()
	types := make([]byte, n)
	io.ReadFull(r, types)
	if !bytes.Contains(types, []byte{1}) {
		c.t.Fatalf("VNC offers no unauthenticated access: %v", types)
	}
	conn.Write([]byte{1})
	var result uint32
	binary.Read(r, binary.BigEndian, &result)
	conn.Write([]byte{1}) // ClientInit: shared
	var size struct{ W, H uint16 }
	if err := binary.Read(r, binary.BigEndian, &size); err != nil || result != 0 {
		c.t.Fatalf("VNC handshake: result %d, %v", result, err)
	}
	return int(size.W), int(size.H)
}

// changedPixels counts the pixels that differ between two screenshots.
func changedPixels(a, b image.Image) int {
	if a.Bounds() != b.Bounds() {
		return a.Bounds().Dx() * a.Bounds().Dy()
	}
	n := 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				n++
			}
		}
	}
	return n
}

// vgaText reads guest i's VGA text memory through the core's QMP socket:
// what the VGA console shows (and has scrolled past), as plain text.
func (c *inputCluster) vgaText(i int) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := qmp.Dial(ctx, filepath.Join(c.GuestDir(c.name, i), "qmp.sock"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer q.Close()
	dump := filepath.Join(c.Dir, "vga.bin")
	if err := q.Run(ctx, "pmemsave", map[string]any{"val": 0xb8000, "size": 0x8000, "filename": dump}, nil); err != nil {
		c.t.Fatal(err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		c.t.Fatal(err)
	}
	var s strings.Builder
	for j := 0; j < len(b); j += 2 { // character, attribute, ...
		s.WriteByte(b[j])
	}
	return s.String()
}

// coreQMP runs one command on guest i's core QMP socket (pause, resume).
func (c *inputCluster) coreQMP(i int, command string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := qmp.Dial(ctx, filepath.Join(c.GuestDir(c.name, i), "qmp.sock"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer q.Close()
	if err := q.Run(ctx, command, nil, nil); err != nil {
		c.t.Fatal(err)
	}
}

func (c *inputCluster) dialWS(ctx context.Context, i int) *websocket.Conn {
	c.t.Helper()
	u := strings.Replace(c.base, "http://", "ws://", 1) + fmt.Sprintf("/api/instances/%d/input/ws?token=%s", i, c.token)
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return ws
}

// TestInputAPI drives two real guests (TCG) through the API and the qmp
// input plugin, and reads back from each guest what arrived: guest 0 has
// the PS/2 mouse only, guest 1 a USB tablet as well.
func TestInputAPI(t *testing.T) {
	c := startInputCluster(t, "inp", 2, "  instance \"1\" {\n    pointer = \"tablet\"\n  }\n")
	c.waitInputReady(0)
	before, _ := c.screenshot(0)

	t.Run("instances", func(t *testing.T) {
		var inst []map[string]any
		if err := json.Unmarshal(c.ok("GET", "/api/instances", ""), &inst); err != nil {
			t.Fatal(err)
		}
		if len(inst) != 2 || inst[0]["state"] != "running" || inst[0]["accel"] != "tcg" || inst[0]["uptime_seconds"] == nil {
			t.Errorf("instances: %v", inst)
		}
		if _, ok := inst[0]["addresses"].([]any); !ok {
			t.Errorf("no addresses list: %v", inst[0])
		}
	})

	t.Run("typed text arrives as the right keys, shift included", func(t *testing.T) {
		off := c.serialSize(0)
		var res struct {
			Instance           string
			Characters, Events int
		}
		json.Unmarshal(c.ok("POST", "/api/instances/inp-0/type", `{"text":"Hello, LAN!"}`), &res)
		want := expectTyped(t, "Hello, LAN!")
		if res.Instance != "inp-0" || res.Characters != 11 || res.Events != len(want) {
			t.Errorf("answer: %+v", res)
		}
		if got := c.waitEvents(0, off, len(want), evKey); !sameEvents(got, want) {
			t.Errorf("guest got keys\n %v\nwant\n %v", got, want)
		}
	})

	t.Run("screenshot has the guest's resolution and shows the typing", func(t *testing.T) {
		after, _ := c.screenshot(0)
		w, h := c.vncSize(0)
		if b := after.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("screenshot is %v, the guest's display %dx%d", b, w, h)
		}
		// The console's own echo of the 11 typed characters lights ~300
		// pixels of 9x16 cells; a cursor, were it shown, is 18. (The
		// agent echoes input events on the serial console only.)
		if n := changedPixels(before, after); n < 150 {
			t.Errorf("only %d pixels changed after typing", n)
		}
		if vga := c.vgaText(0); !strings.Contains(vga, "Hello, LAN!") {
			t.Errorf("the VGA console does not show the typed keys:\n%s", strings.Join(strings.Fields(vga), " "))
		}
	})

	t.Run("mouse motion, click and wheel arrive as evdev events", func(t *testing.T) {
		off := c.serialSize(0)
		c.ok("POST", "/api/instances/0/input", `{"events":[
			{"rel":{"dx":7,"dy":-3}},
			{"button":{"button":"left","down":true}},
			{"button":{"button":"left","down":false}},
			{"wheel":{"delta":1}}]}`)
		want := []guestEvent{{evRel, relX, 7}, {evRel, relY, -3}, {evKey, btnLeft, 1}, {evKey, btnLeft, 0}, {evRel, relWheel, 1}}
		if got := c.waitEvents(0, off, len(want), evKey, evRel); !sameEvents(got, want) {
			t.Errorf("guest got %v, want %v", got, want)
		}
	})

	t.Run("WebSocket delivers a burst of 500 keys in order", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ws := c.dialWS(ctx, 0)
		defer ws.CloseNow()
		replies := make(chan string, 10)
		go func() {
			for {
				_, msg, err := ws.Read(ctx)
				if err != nil {
					close(replies)
					return
				}
				replies <- string(msg)
			}
		}()
		off := c.serialSize(0)
		letters := "abcdefghijklmnopqrstuvwxyz"
		var want []guestEvent
		for i := 0; i < 250; i++ {
			k := letters[i%26]
			code := map[byte]int{'a': 30, 'b': 48, 'c': 46, 'd': 32, 'e': 18, 'f': 33, 'g': 34, 'h': 35, 'i': 23, 'j': 36, 'k': 37,
				'l': 38, 'm': 50, 'n': 49, 'o': 24, 'p': 25, 'q': 16, 'r': 19, 's': 31, 't': 20, 'u': 22, 'v': 47, 'w': 17,
				'x': 45, 'y': 21, 'z': 44}[k]
			for _, down := range []bool{true, false} {
				msg := fmt.Sprintf(`{"key":{"qcode":"%c","down":%v}}`, k, down)
				if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				v := 0
				if down {
					v = 1
				}
				want = append(want, guestEvent{evKey, code, v})
			}
		}
		got := c.waitEvents(0, off, 500, evKey)
		if !sameEvents(got, want) {
			for i := range want {
				if i >= len(got) || got[i] != want[i] {
					t.Fatalf("event %d differs: got %d events, want 500 in order; first difference %v vs %v", i, len(got), got[i:min(i+5, len(got))], want[i:i+5])
				}
			}
			t.Fatalf("%d events arrived, want exactly 500", len(got))
		}
		select {
		case r := <-replies:
			t.Errorf("the WebSocket reported a problem: %s", r)
		default:
		}
	})

	t.Run("WebSocket motion arrives whole, and before the key that follows it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws := c.dialWS(ctx, 0)
		defer ws.CloseNow()
		off := c.serialSize(0)
		for range 60 {
			ws.Write(ctx, websocket.MessageText, []byte(`{"rel":{"dx":2,"dy":-1}}`))
		}
		ws.Write(ctx, websocket.MessageText, []byte(`{"chord":["k"]}`))
		got := c.waitEvents(0, off, 2, evKey)
		var dx, dy, moves int
		for _, ev := range c.eventsSince(0, off) {
			switch {
			case ev.Type == evRel && ev.Code == relX:
				dx += ev.Value
				moves++
			case ev.Type == evRel && ev.Code == relY:
				dy += ev.Value
			case ev.Type == evKey:
				if dx != 120 || dy != -60 {
					t.Errorf("the key arrived after motion (%d, %d) of (120, -60)", dx, dy)
				}
				t.Logf("60 motions arrived as %d; then %v", moves, got)
				return
			}
		}
	})

	t.Run("bad input is refused with a status and a JSON error", func(t *testing.T) {
		cases := []struct {
			name, method, path, token, body string
			code                            int
			want                            string
		}{
			{"invalid JSON", "POST", "/api/instances/0/input", c.token, `{"events":[`, 400, "invalid JSON"},
			{"unknown key", "POST", "/api/instances/0/input", c.token, `{"events":[{"key":{"qcode":"hyperspace","down":true}}]}`, 400, `unknown key "hyperspace"`},
			{"out-of-range coordinates", "POST", "/api/instances/1/input", c.token, `{"events":[{"abs":{"x":32768,"y":0}}]}`, 400, "abs.x = 32768 is out of range 0..32767"},
			{"untypable text", "POST", "/api/instances/0/type", c.token, `{"text":"smörgåsbord"}`, 400, "no key on a US keyboard"},
			{"wrong token", "POST", "/api/instances/0/input", "not-the-token", `{"events":[{"chord":["a"]}]}`, 401, "missing or wrong token"},
			{"wrong token, screenshot", "GET", "/api/instances/0/screenshot", "not-the-token", ``, 401, "missing or wrong token"},
			{"unknown instance", "GET", "/api/instances/inp-5/screenshot", c.token, ``, 404, `no instance "inp-5"`},
			{"absolute pointer without a tablet", "POST", "/api/instances/0/input", c.token, `{"events":[{"abs":{"x":100,"y":100}}]}`, 409, "has no absolute pointer device"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				code, body, _ := c.call(tc.method, tc.path, tc.token, tc.body)
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || code != tc.code || !strings.Contains(e.Error, tc.want) {
					t.Errorf("%d %s; want %d with %q", code, body, tc.code, tc.want)
				}
			})
		}
		t.Run("paused guest", func(t *testing.T) {
			c.coreQMP(0, "stop")
			defer c.coreQMP(0, "cont")
			code, body, _ := c.call("POST", "/api/instances/0/type", c.token, `{"text":"x"}`)
			if code != http.StatusConflict || !strings.Contains(string(body), "paused or stopped") {
				t.Errorf("%d %s", code, body)
			}
		})
		t.Run("WebSocket reports a bad message and carries on", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ws := c.dialWS(ctx, 0)
			defer ws.CloseNow()
			off := c.serialSize(0)
			for _, msg := range []string{`{"key":{"qcode":"a"`, `[{"chord":["k"]}]`} {
				ws.Write(ctx, websocket.MessageText, []byte(msg))
			}
			_, reply, err := ws.Read(ctx)
			var e struct {
				Seq, Status int
				Error       string
			}
			if err != nil || json.Unmarshal(reply, &e) != nil || e.Seq != 1 || e.Status != 400 || !strings.Contains(e.Error, "invalid JSON") {
				t.Errorf("reply %s, %v", reply, err)
			}
			if got := c.waitEvents(0, off, 2, evKey); !sameEvents(got, []guestEvent{{evKey, 37, 1}, {evKey, 37, 0}}) {
				t.Errorf("the message after the bad one: %v", got)
			}
		})
	})

	t.Run("absolute pointer on the guest with a tablet", func(t *testing.T) {
		c.waitInputReady(1)
		off := c.serialSize(1)
		c.ok("POST", "/api/instances/inp-1/input", `{"events":[{"abs":{"x":16384,"y":8192}}]}`)
		// The guest's usbhid driver reports the tablet's position as
		// ABS_X (0) and ABS_Y (1).
		got := c.waitEvents(1, off, 2, evAbs)
		if got[0].Code != 0 || got[1].Code != 1 {
			t.Errorf("abs events: %v", got)
		}
	})

	t.Run("a guest that restarts is reconnected", func(t *testing.T) {
		pid := c.Status(c.spec).Guests[1].PID
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, body, _ := c.call("POST", "/api/instances/1/type", c.token, `{"text":"a"}`)
		if code != http.StatusConflict {
			t.Errorf("input to a guest that just died: %d %s", code, body)
		}
		c.WaitReady(c.name, 1, 2)
		c.waitInputReady(1)
		off := c.serialSize(1)
		c.ok("POST", "/api/instances/1/type", `{"text":"ok"}`)
		if got, want := c.waitEvents(1, off, 4, evKey), expectTyped(t, "ok"); !sameEvents(got, want) {
			t.Errorf("after the restart the guest got %v, want %v", got, want)
		}
	})

	t.Run("a restarted plugin is reconfigured and delivers", func(t *testing.T) {
		pid := childNamed(t, c.Status(c.spec).LocoPID, "loco-plugin-input-qmp")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		off := c.serialSize(0)
		deadline := time.Now().Add(time.Minute)
		for {
			code, body, _ := c.call("POST", "/api/instances/0/type", c.token, `{"text":"a"}`)
			if code == http.StatusOK {
				break
			}
			if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("while the plugin restarts: %d %s", code, body)
			}
			t.Logf("while the plugin restarts: %d %s", code, body)
			time.Sleep(200 * time.Millisecond)
		}
		if now := childNamed(t, c.Status(c.spec).LocoPID, "loco-plugin-input-qmp"); now == pid {
			t.Fatalf("the plugin (pid %d) was not restarted", pid)
		}
		if got := c.waitEvents(0, off, 2, evKey); !sameEvents(got, expectTyped(t, "a")) {
			t.Errorf("after the plugin restart the guest got %v", got)
		}
	})

	t.Run("loco mcp", func(t *testing.T) { testMCP(t, c) })
}

// childNamed finds the process with the given executable name whose parent
// is ppid.
func childNamed(t testing.TB, ppid int, name string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		open, shut := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || shut < open {
			continue
		}
		fields := strings.Fields(s[shut+1:])
		if len(fields) < 2 {
			continue
		}
		parent, _ := strconv.Atoi(fields[1])
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if parent == ppid && filepath.Base(exe) == name {
			return pid
		}
	}
	t.Fatalf("no process %s with parent %d", name, ppid)
	return 0
}
