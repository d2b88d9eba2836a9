package streamer

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// TestEndpoints: across gRPC, an attached guest is watched by WHEP and by
// RFB on its own VNC socket; an unknown index is ErrNoInstance.
func TestEndpoints(t *testing.T) {
	dir := t.TempDir()
	in := sdk.Instance{Index: 0, Name: "t-0", VNC: "unix:" + filepath.Join(dir, "vnc.sock"), StateDir: filepath.Join(dir, "g0")}
	p := New()
	defer p.cancel()
	c := sdktest.Start(t, p)
	if problems, diags := sdktest.Configure(t, c, `audio = false`, sdk.Cluster{Name: "t", Instances: []sdk.Instance{in}}); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", diags, problems)
	}
	if _, err := c.Attach(context.Background(), sdk.KindStream, in); err != nil {
		t.Fatal(err)
	}
	eps, err := c.StreamEndpoints(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || eps[0].Protocol != sdk.ProtocolWHEP || eps[1].Protocol != sdk.ProtocolRFB || eps[1].Dial != in.VNC {
		t.Errorf("endpoints %+v", eps)
	}
	if _, err := c.StreamEndpoints(context.Background(), 5); !errors.Is(err, sdk.ErrNoInstance) {
		t.Errorf("instance 5: %v, want ErrNoInstance", err)
	}
}
