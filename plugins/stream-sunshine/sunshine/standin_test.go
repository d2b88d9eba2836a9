package sunshine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// buildStandin compiles ../standin, the stand-in for the Sunshine binary
// (Sunshine is not in Debian); TestRealSunshine runs the real one where
// it is installed.
func buildStandin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sunshine-standin")
	out, err := exec.Command("go", "build", "-o", bin, "../standin").CombinedOutput()
	if err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, out)
	}
	return bin
}

// testPorts picks display and port bases unlikely to meet another test
// run's on a shared host.
func testPorts() (displayBase, basePort int) {
	n := os.Getpid() % 400
	return 200 + 2*n, 20000 + 100*(n%300)
}

func cluster(t *testing.T, n int) sdk.Cluster {
	dir := t.TempDir()
	cl := sdk.Cluster{Name: "sun", StateDir: dir}
	for i := 0; i < n; i++ {
		cl.Instances = append(cl.Instances, sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("sun-%d", i),
			StateDir: filepath.Join(dir, "guests", fmt.Sprint(i))})
	}
	return cl
}

func waitHealthy(t *testing.T, c *sdk.Client, i uint32) sdk.Endpoint {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		eps, err := c.StreamEndpoints(context.Background(), i)
		if err == nil && len(eps) == 1 && eps[0].Healthy {
			return eps[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d never healthy: %+v %v", i, eps, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSupervisionStandin runs the plugin with the stand-in Sunshine over
// gRPC: per guest a real Xvfb and a supervised "Sunshine", the Moonlight
// endpoint with health from its API, PIN pairing forwarded to it, and a
// killed Sunshine started again.
func TestSupervisionStandin(t *testing.T) {
	bin := buildStandin(t)
	db, bp := testPorts()
	cl := cluster(t, 2)
	p := New()
	c := sdktest.Start(t, p)
	t.Cleanup(func() {
		for _, r := range p.running {
			r.stop()
		}
	})
	src := fmt.Sprintf("binary = %q\naddress = \"192.0.2.7\"\nbase_port = %d\ndisplay_base = %d\n", bin, bp, db)
	if problems, diags := sdktest.Configure(t, c, src, cl); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", problems, diags)
	}
	ctx := context.Background()
	for _, in := range cl.Instances {
		args, win, err := c.AttachStream(ctx, in)
		if err != nil || len(args) != 0 || win.XDisplay != fmt.Sprintf(":%d", db+int(in.Index)) {
			t.Fatalf("attach %s: %v %+v %v", in.Name, args, win, err)
		}
	}
	for i := range cl.Instances {
		ep := waitHealthy(t, c, uint32(i))
		t.Logf("instance %d: %+v", i, ep)
		if ep.Protocol != sdk.ProtocolMoonlight || ep.Address != "192.0.2.7" || ep.Port != bp+100*i || !ep.Pairing {
			t.Errorf("instance %d endpoint %+v", i, ep)
		}
	}

	if err := c.Pair(ctx, sdk.PairRequest{Instance: 1, PIN: "4321", ClientName: "tv"}); err != nil {
		t.Fatalf("pairing: %v", err)
	}
	pins, _ := os.ReadFile(filepath.Join(cl.Instances[1].StateDir, "sunshine", "standin-pins"))
	if strings.TrimSpace(string(pins)) != "4321 tv" {
		t.Errorf("instance 1's Sunshine got PINs %q, want 4321 from tv", pins)
	}
	if _, err := os.Stat(filepath.Join(cl.Instances[0].StateDir, "sunshine", "standin-pins")); err == nil {
		t.Errorf("instance 0's Sunshine got instance 1's PIN")
	}
	if err := c.Pair(ctx, sdk.PairRequest{Instance: 0, PIN: "0000"}); !errors.Is(err, sdk.ErrInvalid) {
		t.Errorf("a PIN Sunshine refuses: %v, want ErrInvalid", err)
	}

	r := p.running[0]
	pid, starts, _ := r.sunshine.status()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for {
		npid, nstarts, last := r.sunshine.status()
		if npid != 0 && npid != pid && nstarts == starts+1 {
			t.Logf("Sunshine restarted %v after SIGKILL (last exit: %s)", time.Since(killed).Round(time.Millisecond), last)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sunshine not restarted: pid %d starts %d", npid, nstarts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitHealthy(t, c, 0)

	// A Sunshine that cannot run (no X display) is retried with backoff
	// and reported unhealthy with its last exit.
	r.xvfb.stop()
	pid, _, _ = r.sunshine.status()
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(3 * time.Second)
	eps, err := c.StreamEndpoints(ctx, 0)
	if err != nil || eps[0].Healthy || !strings.Contains(eps[0].Status, "no X display") && !strings.Contains(eps[0].Status, "exit status 1") {
		t.Errorf("without its display: %+v %v, want unhealthy with the last exit", eps, err)
	}
	t.Logf("without its display: %s", eps[0].Status)
	_, starts, _ = r.sunshine.status()
	if starts > 6 {
		t.Errorf("%d starts in 3 s: no backoff", starts)
	}
}

// TestMissingSunshine: validation says Sunshine is missing and how to get it.
func TestMissingSunshine(t *testing.T) {
	c := sdktest.Start(t, New())
	problems, diags := sdktest.Configure(t, c, `binary = "sunshine-not-here"`, cluster(t, 1))
	if diags.HasErrors() || len(problems) != 1 || problems[0].Path[0] != "binary" ||
		!strings.Contains(problems[0].Detail, "not packaged in Debian") || !strings.Contains(problems[0].Detail, "apt-get install ./sunshine") {
		t.Fatalf("want a binary problem with the install hint, got %+v %v", problems, diags)
	}
	t.Logf("%s: %s", problems[0].Summary, problems[0].Detail)
}

// TestRealSunshine runs the plugin with Sunshine itself, where one is
// installed: it must come up healthy on its display and API.
func TestRealSunshine(t *testing.T) {
	bin, err := exec.LookPath("sunshine")
	if err != nil {
		t.Skip("Sunshine is not installed on this host: " + installHint)
	}
	db, bp := testPorts()
	cl := cluster(t, 1)
	p := New()
	c := sdktest.Start(t, p)
	t.Cleanup(func() {
		for _, r := range p.running {
			r.stop()
		}
	})
	if problems, diags := sdktest.Configure(t, c, fmt.Sprintf("binary = %q\nbase_port = %d\ndisplay_base = %d\n", bin, bp+50, db+1), cl); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", problems, diags)
	}
	if _, _, err := c.AttachStream(context.Background(), cl.Instances[0]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", waitHealthy(t, c, 0))
}
