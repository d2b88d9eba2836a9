package vncstream

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// rfbListener is a unix socket that greets like an RFB server; the real
// QEMU behind it is cmd/loco's TestDashboardVNC.
func rfbListener(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("RFB 003.008\n"))
			c.Close()
		}
	}()
}

func TestEndpoints(t *testing.T) {
	dir := t.TempDir()
	cl := sdk.Cluster{Name: "v"}
	for i := 0; i < 2; i++ {
		d := filepath.Join(dir, "guests", string(rune('0'+i)))
		cl.Instances = append(cl.Instances, sdk.Instance{Index: uint32(i), Name: "v-" + string(rune('0'+i)),
			VNC: "unix:" + filepath.Join(dir, "vnc"+string(rune('0'+i))+".sock"), StateDir: d})
	}
	rfbListener(t, strings.TrimPrefix(cl.Instances[0].VNC, "unix:"))
	c := sdktest.Start(t, New())
	if problems, diags := sdktest.Configure(t, c, ``, cl); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", problems, diags)
	}
	ctx := context.Background()
	args, err := c.Attach(ctx, sdk.KindStream, cl.Instances[0])
	if err != nil || len(args) != 0 {
		t.Errorf("attach: %v %v, want no arguments (the core's VNC socket is all it serves)", args, err)
	}
	eps, err := c.StreamEndpoints(ctx, 0)
	if err != nil || len(eps) != 1 || eps[0].Protocol != sdk.ProtocolRFB || eps[0].Dial != cl.Instances[0].VNC || !eps[0].Healthy {
		t.Fatalf("guest 0: %+v %v, want its healthy RFB socket", eps, err)
	}
	t.Logf("guest 0: %s", eps[0].Status)
	eps, err = c.StreamEndpoints(ctx, 1)
	if err != nil || len(eps) != 1 || eps[0].Healthy || eps[0].Dial != cl.Instances[1].VNC {
		t.Fatalf("guest 1 without a display: %+v %v, want its socket, unhealthy", eps, err)
	}
	t.Logf("guest 1: %s", eps[0].Status)
	if _, err := c.StreamEndpoints(ctx, 7); !errors.Is(err, sdk.ErrNoInstance) {
		t.Errorf("unknown guest: %v, want ErrNoInstance", err)
	}
	if _, _, err := c.Offer(ctx, sdk.OfferRequest{Instance: 0, SDP: "v=0"}); !errors.Is(err, sdk.ErrUnsupported) {
		t.Errorf("a WHEP offer: %v, want ErrUnsupported", err)
	}
}
