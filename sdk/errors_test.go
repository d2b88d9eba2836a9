package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// failingInput is an input plugin whose Send returns whatever error the
// test puts in it.
type failingInput struct {
	kitchen
	err error
}

func (f *failingInput) Send(context.Context, uint32, []sdk.InputEvent) error { return f.err }

// TestSentinelsCrossTheWire: what a plugin wraps is what the host can test
// for with errors.Is, through a real gRPC server, and the plugin's words
// arrive without gRPC's "rpc error: code = ..." around them.
func TestSentinelsCrossTheWire(t *testing.T) {
	sentinels := []error{sdk.ErrInvalid, sdk.ErrNoInstance, sdk.ErrNotFound, sdk.ErrGuestNotRunning,
		sdk.ErrNotReady, sdk.ErrBusy, sdk.ErrUnsupported, context.DeadlineExceeded, context.Canceled}
	p := &failingInput{}
	c := sdktest.Start(t, p)
	for _, want := range sentinels {
		p.err = fmt.Errorf("guest x-1: the thing failed: %w", want)
		err := c.Send(context.Background(), 1, nil)
		if !errors.Is(err, want) {
			t.Errorf("sent %v, got %v: not errors.Is the sentinel", want, err)
		}
		for _, other := range sentinels {
			if other != want && errors.Is(err, other) {
				t.Errorf("sent %v, got an error that is also %v", want, other)
			}
		}
		var re *sdk.RemoteError
		if !errors.As(err, &re) || re.Message != p.err.Error() {
			t.Errorf("sent %q, the host read %#v", p.err, re)
		}
		if strings.Contains(err.Error(), "rpc error") {
			t.Errorf("gRPC's wording leaked: %v", err)
		}
	}
	p.err = errors.New("the plugin's own bug")
	err := c.Send(context.Background(), 1, nil)
	for _, s := range sentinels {
		if errors.Is(err, s) {
			t.Errorf("a plain error came back as %v", s)
		}
	}
	if !strings.Contains(err.Error(), "the plugin's own bug") {
		t.Errorf("plain error lost its words: %v", err)
	}
}
