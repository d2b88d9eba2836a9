package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/locolan/loco/sdk"
)

// runInputLatency is BenchmarkInputToDisplay (cmd/loco) as a scenario: a
// trial ends at the first screenshot that differs from the settled screen,
// so it includes up to one screenshot more than the change needed.
// Screenshots are compared as PNG bytes (the input plugin encodes
// deterministically). Each trial's letter is rubbed out again afterwards.
func runInputLatency(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	trials, err := param(req, "trials", 20)
	if err != nil {
		return nil, err
	}
	if _, err := c.lan(ctx); err == nil {
		if err := waitReachable(ctx, c, req, progress); err != nil {
			return nil, err
		}
	}
	in, err := c.instances(ctx)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("the cluster has no guests")
	}
	shot := func() ([]byte, time.Duration, error) {
		t0 := time.Now()
		b, err := c.do(ctx, "GET", "/api/instances/0/screenshot", "")
		return b, time.Since(t0), err
	}
	press := func(qcode string) error {
		_, err := c.do(ctx, "POST", "/api/instances/0/input",
			fmt.Sprintf(`{"events":[{"key":{"qcode":%q,"down":true}},{"key":{"qcode":%q,"down":false}}]}`, qcode, qcode))
		return err
	}
	// settle: the screen is still once two screenshots 50 ms apart agree.
	settle := func() ([]byte, error) {
		prev, _, err := shot()
		if err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			cur, _, err := shot()
			if err != nil {
				return nil, err
			}
			if bytes.Equal(prev, cur) {
				return cur, nil
			}
			prev = cur
		}
		return nil, errors.New("the screen of guest 0 did not stay still for 50 ms within 30 s")
	}
	var lat, shots, calls []float64
	n := int(trials)
	for trial := range n {
		before, err := settle()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := press(string(rune('a' + trial%26))); err != nil {
			return nil, err
		}
		calls = append(calls, ms(time.Since(start)))
		for {
			after, took, err := shot()
			if err != nil {
				return nil, err
			}
			shots = append(shots, ms(took))
			if !bytes.Equal(before, after) {
				lat = append(lat, ms(time.Since(start)))
				break
			}
			if time.Since(start) > 10*time.Second {
				return nil, fmt.Errorf("trial %d: the screen of %s did not change within 10 s of a key press", trial+1, in[0].Name)
			}
		}
		if err := press("backspace"); err != nil {
			return nil, err
		}
		progress(float64(trial+1)/float64(n), fmt.Sprintf("trial %d/%d: %.0f ms", trial+1, n, lat[len(lat)-1]))
	}
	v := map[string]float64{"trials": float64(n)}
	summary(v, "latency", "ms", lat)
	summary(v, "screenshot", "ms", shots)
	summary(v, "call", "ms", calls)
	return []sdk.BenchRow{{Labels: map[string]string{"guest": in[0].Name}, Values: v,
		Samples: map[string][]float64{"latency_ms": lat, "screenshot_ms": shots}}}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
