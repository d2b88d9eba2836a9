package qmpinput

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/qmp"
	"github.com/locolan/loco/sdk/sdktest"
)

func TestConfigure(t *testing.T) {
	cluster := sdk.Cluster{Name: "t", Instances: []sdk.Instance{{Index: 0, Name: "t-0", InputQMPSocket: "/nonexistent/input.sock", StateDir: t.TempDir()}}}
	cases := []struct {
		name, src string
		paths     []string // attributes the plugin objects to
	}{
		{"defaults", ``, nil},
		{"tuned", "event_interval = \"0s\"\ntimeout = \"250ms\"", nil},
		{"interval not a duration", `event_interval = "fast"`, []string{"event_interval"}},
		{"interval too long", `event_interval = "2s"`, []string{"event_interval"}},
		{"negative interval", `event_interval = "-1ms"`, []string{"event_interval"}},
		{"timeout too short", `timeout = "1ms"`, []string{"timeout"}},
		{"both wrong", "event_interval = \"x\"\ntimeout = \"1h\"", []string{"event_interval", "timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sdktest.Start(t, &Plugin{})
			problems, diags := sdktest.Configure(t, c, tc.src, cluster)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got []string
			for _, p := range problems {
				got = append(got, strings.Join(p.Path, "."))
			}
			if strings.Join(got, ",") != strings.Join(tc.paths, ",") {
				t.Errorf("problems at %v, want %v (%+v)", got, tc.paths, problems)
			}
		})
	}
	t.Run("unknown attribute", func(t *testing.T) {
		c := sdktest.Start(t, &Plugin{})
		if _, diags := sdktest.Configure(t, c, `speed = 3`, cluster); !diags.HasErrors() {
			t.Error("an unknown attribute was accepted")
		}
	})
}

func TestToQMP(t *testing.T) {
	cases := []struct {
		name string
		ev   sdk.InputEvent
		want string // the commands, one JSON array each, joined by " | "
	}{
		{"key", sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "a", Down: true}},
			`[{"type":"key","data":{"down":true,"key":{"type":"qcode","data":"a"}}}]`},
		{"rel", sdk.InputEvent{Rel: &sdk.RelEvent{DX: 10, DY: -5}},
			`[{"type":"rel","data":{"axis":"x","value":10}},{"type":"rel","data":{"axis":"y","value":-5}}]`},
		{"abs", sdk.InputEvent{Abs: &sdk.AbsEvent{X: 0, Y: 32767}},
			`[{"type":"abs","data":{"axis":"x","value":0}},{"type":"abs","data":{"axis":"y","value":32767}}]`},
		{"button", sdk.InputEvent{Button: &sdk.ButtonEvent{Button: "left", Down: false}},
			`[{"type":"btn","data":{"button":"left","down":false}}]`},
		{"wheel down twice", sdk.InputEvent{Wheel: &sdk.WheelEvent{Delta: -2}},
			`[{"type":"btn","data":{"button":"wheel-down","down":true}},{"type":"btn","data":{"button":"wheel-down","down":false}}]` + " | " +
				`[{"type":"btn","data":{"button":"wheel-down","down":true}},{"type":"btn","data":{"button":"wheel-down","down":false}}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, cmd := range toQMP(tc.ev) {
				b, _ := json.Marshal(cmd)
				got = append(got, string(b))
			}
			if g := strings.Join(got, " | "); g != tc.want {
				t.Errorf("\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

// fakeGuest is a real QEMU with no guest OS (SeaBIOS finds nothing to boot
// and waits): enough for QEMU to take input and draw a screen.
type fakeGuest struct {
	t        *testing.T
	dir      string
	inputQMP string
	coreQMP  string
	cmd      *exec.Cmd
	done     chan struct{}
}

func startFakeGuest(t *testing.T, dir string, paused bool, extra ...string) *fakeGuest {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is not installed: make test installs it (APT_PACKAGES)")
	}
	g := &fakeGuest{t: t, dir: dir, inputQMP: filepath.Join(dir, "input.sock"), coreQMP: filepath.Join(dir, "qmp.sock"), done: make(chan struct{})}
	args := []string{"-machine", "pc", "-accel", "tcg", "-m", "32", "-nodefaults", "-display", "none", "-vga", "std", "-nic", "none",
		"-chardev", "socket,id=qmp0,path=" + g.coreQMP + ",server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
		"-chardev", "socket,id=qmp1,path=" + g.inputQMP + ",server=on,wait=off", "-mon", "chardev=qmp1,mode=control"}
	if paused {
		args = append(args, "-S")
	}
	g.cmd = exec.Command("qemu-system-x86_64", append(args, extra...)...)
	var stderr bytes.Buffer
	g.cmd.Stderr = &stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.done) }()
	t.Cleanup(g.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Both: QEMU opens its sockets one after the other.
		c1, err1 := net.Dial("unix", g.coreQMP)
		c2, err2 := net.Dial("unix", g.inputQMP)
		for _, c := range []net.Conn{c1, c2} {
			if c != nil {
				c.Close()
			}
		}
		if err1 == nil && err2 == nil {
			break
		}
		select {
		case <-g.done:
			t.Fatalf("qemu exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu did not open its QMP socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g
}

func (g *fakeGuest) kill() {
	g.cmd.Process.Kill()
	<-g.done
	os.Remove(g.inputQMP)
	os.Remove(g.coreQMP)
}

// qmp runs a command on the core's socket, as loco would.
func (g *fakeGuest) qmp(command string) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, g.coreQMP)
	if err != nil {
		g.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(ctx, command, nil, nil); err != nil {
		g.t.Fatal(err)
	}
}

var (
	keyA  = []sdk.InputEvent{{Key: &sdk.KeyEvent{QCode: "a", Down: true}}, {Key: &sdk.KeyEvent{QCode: "a"}}}
	click = []sdk.InputEvent{{Rel: &sdk.RelEvent{DX: 3, DY: 4}}, {Button: &sdk.ButtonEvent{Button: "left", Down: true}},
		{Button: &sdk.ButtonEvent{Button: "left"}}, {Wheel: &sdk.WheelEvent{Delta: 2}}}
	absMove = []sdk.InputEvent{{Abs: &sdk.AbsEvent{X: 16384, Y: 16384}}}
)

// wantErr checks the sentinel an error carries across gRPC, and its words.
func wantErr(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("err = %v; want %q with %q", err, kind, msg)
	}
}

// TestAgainstQEMU drives real QEMUs through the plugin's gRPC services: the
// errors callers act on, screenshots, pacing, and reconnecting to a QEMU
// that was restarted or to a plugin that was reconfigured.
func TestAgainstQEMU(t *testing.T) {
	dir := testenv.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	cluster := sdk.Cluster{Name: "t", StateDir: dir, Instances: []sdk.Instance{
		{Index: 0, Name: "t-0", InputQMPSocket: filepath.Join(dir, "input.sock"), StateDir: state}}}
	c := sdktest.Start(t, &Plugin{})
	configure := func(src string) {
		t.Helper()
		if problems, diags := sdktest.Configure(t, c, src, cluster); len(problems) > 0 || diags.HasErrors() {
			t.Fatal(problems, diags)
		}
	}
	configure(`event_interval = "20ms"
timeout = "2s"`)
	ctx := context.Background()

	t.Run("no QEMU yet", func(t *testing.T) {
		wantErr(t, c.Send(ctx, 0, keyA), sdk.ErrGuestNotRunning, "t-0 is not running")
	})
	t.Run("QEMU hangs up as it dies", func(t *testing.T) {
		// A QEMU being killed can accept a connection and drop it.
		lis, err := net.Listen("unix", cluster.Instances[0].InputQMPSocket)
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		go func() {
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		wantErr(t, c.Send(ctx, 0, keyA), sdk.ErrGuestNotRunning, "t-0 is not running: QEMU hung up")
	})
	t.Run("unknown instance", func(t *testing.T) {
		wantErr(t, c.Send(ctx, 7, keyA), sdk.ErrNoInstance, "instance 7: no such instance")
	})
	t.Run("invalid events are refused before any is sent", func(t *testing.T) {
		bad := append(append([]sdk.InputEvent{}, keyA...), sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "enter"}})
		wantErr(t, c.Send(ctx, 0, bad), sdk.ErrInvalid, `event 2: key "enter": the qcode is "ret"`)
	})

	g := startFakeGuest(t, dir, true)
	t.Run("paused VM", func(t *testing.T) {
		wantErr(t, c.Send(ctx, 0, keyA), sdk.ErrGuestNotRunning, "paused or stopped")
	})
	g.qmp("cont")
	t.Run("keys, motion, buttons, wheel", func(t *testing.T) {
		if err := c.Send(ctx, 0, append(append([]sdk.InputEvent{}, keyA...), click...)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("absolute pointer without a tablet", func(t *testing.T) {
		wantErr(t, c.Send(ctx, 0, absMove), sdk.ErrGuestNotRunning, `no absolute pointer device: give it pointer = "tablet"`)
	})
	t.Run("events are paced", func(t *testing.T) {
		// 10 events at 20 ms: the interval is a floor the plugin keeps,
		// whatever the machine's speed.
		evs := append(append(append(append(append([]sdk.InputEvent{}, keyA...), keyA...), keyA...), keyA...), keyA...)
		start := time.Now()
		if err := c.Send(ctx, 0, evs); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 9*20*time.Millisecond {
			t.Errorf("10 events took %v, less than 9 intervals of 20ms", d)
		}
	})
	t.Run("screenshot", func(t *testing.T) {
		shot, err := c.Screenshot(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot.PNG))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != shot.Width || b.Dy() != shot.Height || shot.Width < 320 || shot.Height < 200 {
			t.Errorf("screenshot %dx%d, image %v", shot.Width, shot.Height, b)
		}
		if left, _ := filepath.Glob(filepath.Join(state, screendumpPrefix+"*")); len(left) > 0 {
			t.Errorf("screendumps left behind: %v", left)
		}
	})
	t.Run("reconfigured plugin lets go of the socket and reconnects", func(t *testing.T) {
		configure(`event_interval = "1ms"`)
		if err := c.Send(ctx, 0, keyA); err != nil {
			t.Fatal(err)
		}
	})

	g.kill()
	t.Run("QEMU gone", func(t *testing.T) {
		wantErr(t, c.Send(ctx, 0, keyA), sdk.ErrGuestNotRunning, "not running")
	})
	g = startFakeGuest(t, dir, false, "-usb", "-device", "usb-tablet")
	t.Run("restarted QEMU is reconnected", func(t *testing.T) {
		if err := c.Send(ctx, 0, keyA); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Screenshot(ctx, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("absolute pointer with a tablet", func(t *testing.T) {
		if err := c.Send(ctx, 0, absMove); err != nil {
			t.Fatal(err)
		}
	})

	// No call between the kill and the new QEMU: the plugin finds out on
	// its next command, over the connection to the dead one.
	g.kill()
	startFakeGuest(t, dir, false)
	t.Run("QEMU restarted behind the plugin's back", func(t *testing.T) {
		if err := c.Send(ctx, 0, keyA); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another client holds the socket", func(t *testing.T) {
		configure(`timeout = "300ms"`)
		hold, err := net.Dial("unix", cluster.Instances[0].InputQMPSocket)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		hold.Read(make([]byte, 512)) // the greeting is ours: QEMU is now busy with us
		wantErr(t, c.Send(ctx, 0, keyA), sdk.ErrNotReady, "another client may hold it")
		hold.Close()
		var err2 error
		for range 50 {
			if err2 = c.Send(ctx, 0, keyA); err2 == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err2 != nil {
			t.Errorf("the socket was let go, but the plugin still fails: %v", err2)
		}
	})
	t.Run("metrics count what happened, across reconfigurations", func(t *testing.T) {
		fams, err := c.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range fams {
			if err := f.Validate(); err != nil {
				t.Error(err)
			}
			for _, s := range f.Samples {
				v := s.Value
				if f.Type == sdk.Histogram {
					v = float64(s.Count)
				}
				got[f.Name+fmt.Sprint(s.LabelValues)] = v
			}
		}
		t.Logf("%v", got)
		for k, min := range map[string]float64{
			"loco_input_events_total[t-0 key]":                     20,
			"loco_input_events_total[t-0 button]":                  2,
			"loco_input_events_total[t-0 abs]":                     1,
			"loco_input_errors_total[t-0 send guest_not_running]":  3,
			"loco_input_errors_total[t-0 send invalid]":            1,
			"loco_input_errors_total[instance-7 send no_instance]": 1,
			"loco_input_errors_total[t-0 send not_ready]":          1,
			"loco_input_screenshot_seconds[t-0]":                   2,
		} {
			if got[k] < min {
				t.Errorf("%s = %v, want at least %v", k, got[k], min)
			}
		}
	})
}
