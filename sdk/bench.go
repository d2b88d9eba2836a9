package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	benchv1 "github.com/locolan/loco/sdk/proto/loco/bench/v1"
)

// KindBench is the kind of bench plugins: named scenarios `loco bench`
// runs against a cluster it booted. They are not part of a cluster spec;
// loco finds them among the installed plugins by the scenario's name.
const KindBench = "bench"

// Bench plugins serve benchmark scenarios. A scenario drives the cluster
// only through its HTTP API (RunRequest.APIURL with the bearer token), as a
// user's program would, and reports what it measured as rows.
type Bench interface {
	Plugin
	Scenarios(ctx context.Context) ([]Scenario, error)
	// Run runs one scenario once. progress may be called any number of
	// times; an error from it means loco went away and Run should return.
	Run(ctx context.Context, req RunRequest, progress func(fraction float64, message string) error) ([]BenchRow, error)
}

// Scenario describes one scenario a bench plugin serves.
type Scenario struct {
	Name        string
	Description string
	// FreshCluster: every run needs a cluster booted for it.
	FreshCluster bool
	// Needs are the plugin kinds the cluster must have.
	Needs []string
}

// RunRequest is one run of a scenario.
type RunRequest struct {
	Scenario string
	APIURL   string
	APIToken string
	Guests   int
	Run      int // 1-based
	// Started is when loco started the cluster's guests.
	Started time.Time
	Params  map[string]string
}

// BenchRow is one line of a report. Labels say what it is about, Values
// are its figures by column name (unit in the name: "boot_s",
// "rtt_p50_ms"), Samples raw measurements to plot ("latency_ms").
type BenchRow struct {
	Labels  map[string]string    `json:"labels,omitempty"`
	Values  map[string]float64   `json:"values"`
	Samples map[string][]float64 `json:"samples,omitempty"`
}

type benchServer struct {
	benchv1.UnimplementedBenchServer
	impl Bench
}

func (s *benchServer) Scenarios(ctx context.Context, _ *benchv1.ScenariosRequest) (*benchv1.ScenariosResponse, error) {
	sc, err := s.impl.Scenarios(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	out := &benchv1.ScenariosResponse{}
	for _, x := range sc {
		out.Scenarios = append(out.Scenarios, &benchv1.Scenario{Name: x.Name, Description: x.Description, FreshCluster: x.FreshCluster, Needs: x.Needs})
	}
	return out, nil
}

func (s *benchServer) Run(req *benchv1.RunRequest, stream benchv1.Bench_RunServer) error {
	r := RunRequest{Scenario: req.Scenario, APIURL: req.ApiUrl, APIToken: req.ApiToken, Guests: int(req.Guests), Run: int(req.Run),
		Started: time.Unix(0, req.StartedUnixNanos), Params: req.Params}
	rows, err := s.impl.Run(stream.Context(), r, func(f float64, msg string) error {
		return stream.Send(&benchv1.RunEvent{Event: &benchv1.RunEvent_Progress{Progress: &benchv1.Progress{Fraction: f, Message: msg}}})
	})
	if err != nil {
		return rpcError(err)
	}
	res := &benchv1.Result{}
	for _, row := range rows {
		pr := &benchv1.Row{Labels: row.Labels, Values: row.Values, Samples: map[string]*benchv1.Samples{}}
		for k, v := range row.Samples {
			pr.Samples[k] = &benchv1.Samples{Values: v}
		}
		res.Rows = append(res.Rows, pr)
	}
	return stream.Send(&benchv1.RunEvent{Event: &benchv1.RunEvent_Result{Result: res}})
}

// BenchScenarios asks a bench plugin what it serves.
func (c *Client) BenchScenarios(ctx context.Context) ([]Scenario, error) {
	r, err := c.bench.Scenarios(ctx, &benchv1.ScenariosRequest{})
	if err != nil {
		return nil, fmt.Errorf("asking the bench plugin for its scenarios: %w", fromRPC(err))
	}
	var out []Scenario
	for _, s := range r.Scenarios {
		out = append(out, Scenario{Name: s.Name, Description: s.Description, FreshCluster: s.FreshCluster, Needs: s.Needs})
	}
	return out, nil
}

// BenchRun runs one scenario once; progress sees the plugin's progress.
func (c *Client) BenchRun(ctx context.Context, req RunRequest, progress func(fraction float64, message string)) ([]BenchRow, error) {
	stream, err := c.bench.Run(ctx, &benchv1.RunRequest{Scenario: req.Scenario, ApiUrl: req.APIURL, ApiToken: req.APIToken,
		Guests: uint32(req.Guests), Run: uint32(req.Run), StartedUnixNanos: req.Started.UnixNano(), Params: req.Params})
	if err != nil {
		return nil, fmt.Errorf("starting scenario %s: %w", req.Scenario, fromRPC(err))
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("scenario %s ended without a result", req.Scenario)
		}
		if err != nil {
			return nil, fmt.Errorf("running scenario %s: %w", req.Scenario, fromRPC(err))
		}
		switch e := ev.Event.(type) {
		case *benchv1.RunEvent_Progress:
			if progress != nil {
				progress(e.Progress.Fraction, e.Progress.Message)
			}
		case *benchv1.RunEvent_Result:
			var rows []BenchRow
			for _, r := range e.Result.Rows {
				row := BenchRow{Labels: r.Labels, Values: r.Values}
				if len(r.Samples) > 0 {
					row.Samples = map[string][]float64{}
					for k, v := range r.Samples {
						row.Samples[k] = v.Values
					}
				}
				rows = append(rows, row)
			}
			return rows, nil
		}
	}
}
