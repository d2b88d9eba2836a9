package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/locolan/loco/sdk"
)

// waitReachable waits until every guest answers the prober.
func waitReachable(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) error {
	return waitFor(ctx, "every guest reachable on the LAN", 5*time.Minute, 250*time.Millisecond, func() (bool, error) {
		st, err := c.lan(ctx)
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range st.Ports {
			if p.Reachable {
				n++
			}
		}
		progress(0, fmt.Sprintf("waiting for the guests: %d/%d reachable", n, len(st.Ports)))
		return len(st.Ports) > 0 && n == len(st.Ports), nil
	})
}

// runLAN samples the LAN's status over a window. The prober's RTT changes
// once per probe round, so a sample is kept only when it changed.
func runLAN(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	window, err := param(req, "window", 10)
	if err != nil {
		return nil, err
	}
	if err := waitReachable(ctx, c, req, progress); err != nil {
		return nil, err
	}
	first, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	w := time.Duration(window * float64(time.Second))
	rtt := map[string][]float64{}
	last := map[string]float64{}
	reach, polls := map[string]int{}, 0
	var st lanStatus
	for time.Since(t0) < w {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		st, err = c.lan(ctx)
		if err != nil {
			return nil, err
		}
		polls++
		for _, p := range st.Ports {
			if p.Reachable {
				reach[p.Name]++
			}
			if p.RTTMillis > 0 && p.RTTMillis != last[p.Name] {
				rtt[p.Name] = append(rtt[p.Name], p.RTTMillis)
				last[p.Name] = p.RTTMillis
			}
		}
		progress(time.Since(t0).Seconds()/window, fmt.Sprintf("sampling the LAN: %.0f/%.0f s", time.Since(t0).Seconds(), window))
	}
	secs := time.Since(t0).Seconds()
	before := map[string]int{}
	for i, p := range first.Ports {
		before[p.Name] = i
	}
	var rows []sdk.BenchRow
	var pooled []float64
	for _, p := range st.Ports {
		v := map[string]float64{"reachable_fraction": float64(reach[p.Name]) / float64(max(polls, 1))}
		if i, ok := before[p.Name]; ok {
			f := first.Ports[i]
			v["rx_frames_per_s"] = float64(p.RxFrames-f.RxFrames) / secs
			v["tx_frames_per_s"] = float64(p.TxFrames-f.TxFrames) / secs
			v["drops_per_s"] = float64(p.Drops-f.Drops) / secs
		}
		summary(v, "rtt", "ms", rtt[p.Name])
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": p.Name}, Values: v, Samples: map[string][]float64{"rtt_ms": rtt[p.Name]}})
		pooled = append(pooled, rtt[p.Name]...)
	}
	var drops uint64
	for k, n := range st.Drops {
		drops += n - first.Drops[k]
	}
	all := map[string]float64{"segment_drops_per_s": float64(drops) / secs}
	summary(all, "rtt", "ms", pooled)
	return append(rows, sdk.BenchRow{Labels: map[string]string{"guest": "all"}, Values: all}), nil
}
