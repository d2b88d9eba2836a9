package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/locolan/loco/sdk"
)

// runBoot: a guest counts as booted when it answers the LAN's prober, the
// first thing any guest OS with a NIC does that the API can see.
func runBoot(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	timeout, err := param(req, "timeout_s", 300)
	if err != nil {
		return nil, err
	}
	up := map[string]float64{}
	var order []string
	err = waitFor(ctx, "every guest reachable on the LAN", time.Duration(timeout*float64(time.Second)), 100*time.Millisecond, func() (bool, error) {
		st, err := c.lan(ctx)
		if err != nil {
			return false, err
		}
		now := time.Since(req.Started).Seconds()
		for _, p := range st.Ports {
			if _, seen := up[p.Name]; p.Reachable && !seen {
				up[p.Name] = now
				order = append(order, p.Name)
			}
		}
		progress(float64(len(up))/float64(max(req.Guests, 1)), fmt.Sprintf("%d/%d guests up after %.0f s", len(up), req.Guests, now))
		return len(st.Ports) > 0 && len(up) == len(st.Ports), nil
	})
	if err != nil {
		return nil, err
	}
	var rows []sdk.BenchRow
	var all []float64
	for _, name := range order {
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": name}, Values: map[string]float64{"boot_s": up[name]}})
		all = append(all, up[name])
	}
	sum := sdk.BenchRow{Labels: map[string]string{"guest": "all"}, Values: map[string]float64{}, Samples: map[string][]float64{"boot_s": all}}
	summary(sum.Values, "boot", "s", all)
	sum.Values["boot_all_s"] = sum.Values["boot_max_s"]
	return append(rows, sum), nil
}
