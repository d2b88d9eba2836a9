package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/internal/testenv"
)

// demoWith writes configs/demo.hcl with its stream block swapped for
// another backend's, the one line a user changes, plus what a test needs:
// three guests under TCG, the test guest's absolute paths and any free
// API port.
func (e *e2e) demoWith(stream string) string {
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "configs", "demo.hcl"))
	if err != nil {
		e.T.Fatal(err)
	}
	s := string(src)
	for old, new := range map[string]string{
		`stream "webrtc" {}`:   stream,
		`"../build/testguest/`: `"` + e.Guest + `/`,
		`accel  = "auto"`:      `accel  = "tcg"`,
		`"127.0.0.1:7780"`:     `"127.0.0.1:0"`,
		`stop_grace = "10s"`:   `stop_grace = "5s"`,
	} {
		if !strings.Contains(s, old) {
			e.T.Fatalf("configs/demo.hcl no longer has %s", old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	path := filepath.Join(e.Dir, "demo.hcl")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		e.T.Fatal(err)
	}
	e.Track(path)
	return path
}

// rfbName does an RFB handshake over the API's WebSocket for a guest and
// returns the desktop name QEMU gives ("QEMU (demo-1)"), which says whose
// display the socket reached.
func rfbName(ctx context.Context, base, tok, id string) (string, int, error) {
	ws := strings.Replace(base, "http://", "ws://", 1) + "/api/instances/" + id + "/rfb"
	if tok != "" {
		ws += "?token=" + tok
	}
	c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return "", code, err
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	buf := make([]byte, 12)
	if _, err := io.ReadFull(nc, buf); err != nil || !strings.HasPrefix(string(buf), "RFB ") {
		return "", 101, fmt.Errorf("version %q: %v", buf, err)
	}
	nc.Write([]byte("RFB 003.008\n"))
	n := make([]byte, 1)
	if _, err := io.ReadFull(nc, n); err != nil || n[0] == 0 {
		return "", 101, fmt.Errorf("security types: %v %v", n, err)
	}
	types := make([]byte, n[0])
	io.ReadFull(nc, types)
	nc.Write([]byte{1}) // None: the socket is only reachable with the token
	res := make([]byte, 4)
	if _, err := io.ReadFull(nc, res); err != nil || binary.BigEndian.Uint32(res) != 0 {
		return "", 101, fmt.Errorf("security result %v: %v", res, err)
	}
	nc.Write([]byte{1}) // shared: the dashboard's viewers stay connected
	init := make([]byte, 24)
	if _, err := io.ReadFull(nc, init); err != nil {
		return "", 101, err
	}
	name := make([]byte, binary.BigEndian.Uint32(init[20:]))
	if _, err := io.ReadFull(nc, name); err != nil {
		return "", 101, err
	}
	return string(name), 101, nil
}

// TestDashboardVNC is the dashboard's acceptance with stream "vnc": the
// demo spec with its stream line swapped, three real guests, Debian's
// headless Chromium playing every tile with noVNC (Debian's novnc, served
// by loco) over the API's RFB WebSocket; focus and keys through loco's
// input WebSocket reach the focused guest only; the WebSocket wants the
// token and reaches each guest's own display only.
func TestDashboardVNC(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three guests and a browser")
	}
	e := newE2E(t)
	spec := e.demoWith(`stream "vnc" {}`)
	e.MustRun("run", "--detach", spec)
	for i := 0; i < 3; i++ {
		e.WaitReady("demo", i, 1)
	}
	base, tok, err := cluster.APIEndpoint(filepath.Join(e.StateDir, "demo"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the RFB WebSocket wants the token and reaches the guest's own display", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, code, err := rfbName(ctx, base, "", "1"); err == nil || code != http.StatusUnauthorized {
			t.Errorf("without a token: %d %v, want 401", code, err)
		}
		if _, code, err := rfbName(ctx, base, "wrong-token", "1"); err == nil || code != http.StatusUnauthorized {
			t.Errorf("with a wrong token: %d %v, want 401", code, err)
		}
		if _, code, err := rfbName(ctx, base, tok, "7"); err == nil || code != http.StatusNotFound {
			t.Errorf("an unknown guest: %d %v, want 404", code, err)
		}
		for _, id := range []string{"0", "1", "2", "demo-1"} {
			name, _, err := rfbName(ctx, base, tok, id)
			want := "demo-" + id
			if strings.HasPrefix(id, "demo-") {
				want = id
			}
			t.Logf("/api/instances/%s/rfb: %q", id, name)
			if err != nil || name != "QEMU ("+want+")" {
				t.Errorf("/api/instances/%s/rfb reached %q (%v), want QEMU (%s)", id, name, err, want)
			}
		}
		var desc struct {
			Plugin    string `json:"plugin"`
			Endpoints []struct {
				Protocol string `json:"protocol"`
				URL      string `json:"url"`
				Healthy  bool   `json:"healthy"`
				Status   string `json:"status"`
			} `json:"endpoints"`
		}
		apiGet(t, base, tok, "/api/instances/2/stream", &desc)
		t.Logf("GET /api/instances/2/stream: %+v", desc)
		if desc.Plugin != "vnc" || len(desc.Endpoints) != 1 || desc.Endpoints[0].Protocol != "rfb" ||
			desc.Endpoints[0].URL != "/api/instances/2/rfb" || !desc.Endpoints[0].Healthy {
			t.Errorf("stream description %+v, want one healthy rfb endpoint", desc)
		}
	})

	ctx := startChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "three live noVNC tiles", fmt.Sprintf(allLive, 3)+` && [...loco.tiles.values()].every((x) => x.player === 'rfb')`, 2*time.Minute)
	pageWait(t, ctx, "every tile draws the guest's 800x600 screen",
		`[...loco.tiles.values()].every((x) => x.rfb.canvas && x.rfb.canvas.width === 800 && x.rfb.canvas.height === 600)`, time.Minute)
	time.Sleep(2 * time.Second)
	shot := pageShot(t, ctx, "dashboard-vnc.png")
	t.Logf("dashboard screenshot: %s", shot)

	rect := pageEval[struct{ X, Y float64 }](t, ctx,
		`(() => { const r = document.querySelector('.tile[data-index="1"]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(rect.X, rect.Y)); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, "tile 1 focused", `loco.focused && loco.focused.index === 1 && loco.focused.el.classList.contains('focused')`, 10*time.Second)

	t.Run("keys go to the focused guest and no other", func(t *testing.T) {
		pageWait(t, ctx, "the input WebSocket of tile 1 opens", `loco.focused.inputState === 'input ready'`, 30*time.Second)
		before := []int{e.inputLines("demo", 0), e.inputLines("demo", 1), e.inputLines("demo", 2)}
		pageKey(t, ctx, "KeyX", "x", 88)
		pageKey(t, ctx, "KeyC", "c", 67)
		deadline := time.Now().Add(20 * time.Second)
		for !(e.serialHas("demo", 1, "type=1 code=45 value=1") && e.serialHas("demo", 1, "type=1 code=46 value=0")) {
			if time.Now().After(deadline) {
				t.Fatalf("guest 1 did not see x and c; serial tail:\n%s", e.serialTail("demo", 1, 10))
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Second)
		for _, i := range []int{0, 2} {
			if n := e.inputLines("demo", i); n != before[i] {
				t.Errorf("guest %d got %d input events meant for guest 1:\n%s", i, n-before[i], e.serialTail("demo", i, n-before[i]))
			}
		}
	})

	t.Run("a moving screen reaches the focused tile", func(t *testing.T) {
		frames := func() []int {
			return pageEval[[]int](t, ctx, `[...loco.tiles.values()].map((x) => x.rfb.frames)`)
		}
		pageKey(t, ctx, "F10", "F10", 121) // the test guest redraws its console 25 times a second
		defer pageKey(t, ctx, "F10", "F10", 121)
		time.Sleep(time.Second)
		a := frames()
		time.Sleep(3 * time.Second)
		b := frames()
		for i := range a {
			fps := float64(b[i]-a[i]) / 3
			t.Logf("tile %d: %.1f frames drawn per second", i, fps)
			if i == 1 && fps < 5 {
				t.Errorf("the focused moving guest draws %.1f fps in noVNC, want several of the 25 it draws", fps)
			}
			if i != 1 && fps > 5 {
				t.Errorf("still guest %d draws %.1f fps", i, fps)
			}
		}
	})
}
