// Package scenarios is the bench plugin "loco": scenarios that measure a
// cluster `loco bench` booted, through nothing but the cluster's HTTP API
// (the bearer token it is given), the way a user's program would.
package scenarios

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/locolan/loco/sdk"
)

// Plugin is the bench plugin "loco".
type Plugin struct{}

var _ sdk.Bench = (*Plugin)(nil)

// New makes the plugin.
func New() *Plugin { return &Plugin{} }

func (*Plugin) Info() sdk.Info {
	return sdk.Info{Name: "loco", Kind: sdk.KindBench, Version: "1.0.0"}
}

func (*Plugin) ConfigSchema() sdk.Schema { return sdk.Schema{} }

func (*Plugin) Configure(context.Context, sdk.Config, sdk.Cluster) error { return nil }

type scenario struct {
	sdk.Scenario
	run func(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error)
}

var all = []scenario{
	{sdk.Scenario{Name: "boot", FreshCluster: true, Needs: []string{sdk.KindNetwork},
		Description: "Boot, cold (and warm from a snapshot with loco bench --warm): seconds from `loco run` being started until each guest answers the LAN's prober (ARP/ping), as GET /api/lan-status shows it."}, runBoot},
	{sdk.Scenario{Name: "lan", Needs: []string{sdk.KindNetwork, sdk.KindInput},
		Description: "The LAN at rest: the prober's round trips to every guest (rtt_ms samples), traffic and drops per second, over a window (param window, default 10s). Then, with two guests or more, from inside loco's test guests (their agent's commands, typed through the API; the replies read off the LAN's capture): pings and a UDP burst from the first guest to the second (packets/s and Mbit/s on the wire, the share delivered), UDP and IPX (0x8137) broadcasts counted by every other guest and the switch (params udp_count 2000, udp_size 1000, bcast_count 100, pings 50; traffic=off skips this part)."}, runLAN},
	{sdk.Scenario{Name: "density",
		Description: "N guests: CPU (% of one core) and resident memory per guest and per plugin, and of loco itself, from /metrics over a window (param window, default 10s); with a stream plugin, the dashboard open in headless Chromium and every tile's frames shown per second over the same window (tile_fps; params screen=still or moving (F10 on every guest, the test guest's animation), chromium)."}, runDensity},
	{sdk.Scenario{Name: "input-latency", Needs: []string{sdk.KindInput},
		Description: "Input to display on guest 0: a key press through POST /input until a screenshot through the API shows the change (param trials, default 20)."}, runInputLatency},
	{sdk.Scenario{Name: "glass-to-glass", Needs: []string{sdk.KindStream, sdk.KindInput},
		Description: "WebRTC and noVNC side by side on guest 0 in headless Chromium: key to the frame that shows it (params trials, default 30; idle_trials, default 3), and per backend the host CPU (% of one core: the guest's QEMU, the stream plugin, loco) and the viewer's kbit/s and fps, screen still and moving (window, default 10s). Needs a stream plugin serving whep and rfb (stream \"webrtc\") and the test guest's markers (F9, F12, F10)."}, runGlass},
}

func (*Plugin) Scenarios(context.Context) ([]sdk.Scenario, error) {
	out := make([]sdk.Scenario, 0, len(all))
	for _, s := range all {
		out = append(out, s.Scenario)
	}
	return out, nil
}

func (*Plugin) Run(ctx context.Context, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	for _, s := range all {
		if s.Name == req.Scenario {
			return s.run(ctx, newClient(req.APIURL, req.APIToken), req, progress)
		}
	}
	return nil, fmt.Errorf("scenario %q: %w", req.Scenario, sdk.ErrNotFound)
}

// percentile of sorted values, linearly interpolated.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p / 100 * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// summary is the usual figures of a sample set, named prefix_p50_unit...
func summary(values map[string]float64, prefix, unit string, samples []float64) {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	if len(s) == 0 {
		return
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	values[prefix+"_p50_"+unit] = percentile(s, 50)
	values[prefix+"_p95_"+unit] = percentile(s, 95)
	values[prefix+"_max_"+unit] = s[len(s)-1]
	values[prefix+"_mean_"+unit] = sum / float64(len(s))
}

func param(req sdk.RunRequest, name string, def float64) (float64, error) {
	s, ok := req.Params[name]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--param %s=%q: give a positive number: %w", name, s, sdk.ErrInvalid)
	}
	return v, nil
}
