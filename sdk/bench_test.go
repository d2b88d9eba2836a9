package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

type bencher struct{ got sdk.RunRequest }

func (b *bencher) Info() sdk.Info           { return sdk.Info{Name: "b", Kind: sdk.KindBench, Version: "1"} }
func (b *bencher) ConfigSchema() sdk.Schema { return sdk.Schema{} }
func (b *bencher) Configure(context.Context, sdk.Config, sdk.Cluster) error {
	return nil
}

func (b *bencher) Scenarios(context.Context) ([]sdk.Scenario, error) {
	return []sdk.Scenario{{Name: "s", Description: "d", FreshCluster: true, Needs: []string{sdk.KindInput}}}, nil
}

func (b *bencher) Run(ctx context.Context, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	b.got = req
	if req.Scenario != "s" {
		return nil, fmt.Errorf("scenario %q: %w", req.Scenario, sdk.ErrNotFound)
	}
	for i := 1; i <= 3; i++ {
		if err := progress(float64(i)/3, fmt.Sprintf("step %d", i)); err != nil {
			return nil, err
		}
	}
	return []sdk.BenchRow{{Labels: map[string]string{"guest": "t-0"}, Values: map[string]float64{"x_ms": 1.5},
		Samples: map[string][]float64{"x_ms": {1, 2}}}}, nil
}

// TestBenchCrossGRPC: scenarios, a run's progress in order, its rows and
// its errors cross the plugin protocol.
func TestBenchCrossGRPC(t *testing.T) {
	b := &bencher{}
	c := sdktest.Start(t, b)
	ctx := context.Background()
	sc, err := c.BenchScenarios(ctx)
	if err != nil || len(sc) != 1 || sc[0].Name != "s" || !sc[0].FreshCluster || sc[0].Needs[0] != sdk.KindInput {
		t.Fatalf("scenarios %+v %v", sc, err)
	}
	started := time.Unix(1700000000, 5)
	var steps []string
	rows, err := c.BenchRun(ctx, sdk.RunRequest{Scenario: "s", APIURL: "http://x", APIToken: "tok", Guests: 3, Run: 2, Started: started,
		Params: map[string]string{"k": "v"}}, func(f float64, msg string) { steps = append(steps, fmt.Sprintf("%.2f %s", f, msg)) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(steps) != "[0.33 step 1 0.67 step 2 1.00 step 3]" {
		t.Errorf("progress %v", steps)
	}
	if len(rows) != 1 || rows[0].Values["x_ms"] != 1.5 || len(rows[0].Samples["x_ms"]) != 2 || rows[0].Labels["guest"] != "t-0" {
		t.Errorf("rows %+v", rows)
	}
	if g := b.got; g.APIToken != "tok" || g.Guests != 3 || g.Run != 2 || !g.Started.Equal(started) || g.Params["k"] != "v" {
		t.Errorf("the plugin got %+v", g)
	}
	if _, err := c.BenchRun(ctx, sdk.RunRequest{Scenario: "nope"}, nil); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("unknown scenario: %v", err)
	}
}
