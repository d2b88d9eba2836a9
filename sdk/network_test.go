package sdk_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// plainNet is a network plugin without capture.
type plainNet struct{ st sdk.LANStatus }

func (p *plainNet) Info() sdk.Info {
	return sdk.Info{Name: "plain", Kind: sdk.KindNetwork, Version: "1"}
}
func (p *plainNet) ConfigSchema() sdk.Schema                                 { return sdk.Schema{} }
func (p *plainNet) Configure(context.Context, sdk.Config, sdk.Cluster) error { return nil }
func (p *plainNet) Attach(context.Context, sdk.Instance) ([]string, error)   { return nil, nil }
func (p *plainNet) Status(context.Context) (sdk.LANStatus, error)            { return p.st, nil }

// capturingNet adds capture: it sends the frames it was given, then waits
// for the client to go away.
type capturingNet struct {
	plainNet
	frames []sdk.CapturedFrame
	got    chan sdk.CaptureRequest
}

func (c *capturingNet) Capture(ctx context.Context, req sdk.CaptureRequest, send func(sdk.CapturedFrame) error) error {
	c.got <- req
	for _, f := range c.frames {
		if err := send(f); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func TestLANStatusCrossesTheWireWhole(t *testing.T) {
	want := sdk.LANStatus{Healthy: true, Summary: "2/2", HostMAC: "52:00:00:ff:ff:fe", HostIP: "10.0.0.1", Subnet: "10.0.0.0/24",
		Drops: map[string]uint64{"runt": 2},
		Ports: []sdk.Port{{Instance: 1, Name: "x-1", MAC: "52:00:00:00:00:01", IPs: []string{"10.0.0.11"}, LinkUp: true,
			RxFrames: 3, TxFrames: 4, RxBytes: 300, TxBytes: 400, Drops: 1, Reachable: true, RTTMillis: 1.5,
			FramesByEtherType: map[string]uint64{"IPX": 7}, RxByEtherType: map[string]sdk.Traffic{"IPX": {Frames: 3, Bytes: 300}},
			TxByEtherType: map[string]sdk.Traffic{"IPX": {Frames: 4, Bytes: 400}}, Peers: []uint32{0},
			LastSeenMillis: 12, LastReplyMillis: -1}},
		Links: []sdk.Link{{From: 1, To: 0, Frames: 3, Bytes: 300}},
		Uplinks: []sdk.Uplink{{Name: "vxlan 127.0.0.2:4789", Address: "127.0.0.2:4789", Reachable: true, LastSeenMillis: 40,
			RxFrames: 5, RxBytes: 500, TxFrames: 6, TxBytes: 600, MACs: []string{"52:00:00:00:01:00"}, RTTMillis: 0.25}},
	}
	c := sdktest.Start(t, &plainNet{st: want})
	got, err := c.LANStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestCaptureIsOptional(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("a plugin without it says so before any frame", func(t *testing.T) {
		c := sdktest.Start(t, &plainNet{})
		if _, err := c.Capture(ctx, sdk.CaptureRequest{}); !errors.Is(err, sdk.ErrCaptureUnsupported) {
			t.Fatalf("err = %v, want ErrCaptureUnsupported", err)
		}
	})
	t.Run("a plugin with it streams frames", func(t *testing.T) {
		now := time.Unix(1700000000, 123456789)
		p := &capturingNet{got: make(chan sdk.CaptureRequest, 1), frames: []sdk.CapturedFrame{
			{Time: now, Data: []byte{1, 2, 3}, Length: 60, Ingress: 2},
			{Time: now, Data: []byte{4}, Length: 42, FromHost: true, Dropped: 5},
		}}
		c := sdktest.Start(t, p)
		cctx, stop := context.WithCancel(ctx)
		s, err := c.Capture(cctx, sdk.CaptureRequest{Instances: []uint32{2}, Snaplen: 3})
		if err != nil {
			t.Fatal(err)
		}
		if req := <-p.got; !reflect.DeepEqual(req, sdk.CaptureRequest{Instances: []uint32{2}, Snaplen: 3}) {
			t.Errorf("request %+v", req)
		}
		for i, want := range p.frames {
			got, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(want.Time) || !reflect.DeepEqual(got.Data, want.Data) || got.Length != want.Length ||
				got.Ingress != want.Ingress || got.FromHost != want.FromHost || got.Dropped != want.Dropped {
				t.Errorf("frame %d: %+v, want %+v", i, got, want)
			}
		}
		stop()
		if _, err := s.Recv(); err == nil {
			t.Error("the stream went on after the client cancelled")
		}
	})
}
