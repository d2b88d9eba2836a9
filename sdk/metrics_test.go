package sdk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// metered is kitchen with a Metrics method.
type metered struct {
	kitchen
	rtt *sdk.HistogramValue
}

func (m *metered) Metrics(context.Context) ([]sdk.MetricFamily, error) {
	frames := sdk.MetricFamily{Name: "loco_test_frames_total", Help: "Frames.", Type: sdk.Counter, Labels: []string{"guest", "direction"}}
	frames.Add(7, "t-0", "rx")
	frames.Add(9, "t-0", "tx")
	rtt := sdk.MetricFamily{Name: "loco_test_rtt_seconds", Help: "RTT.", Type: sdk.Histogram, Labels: []string{"guest"}}
	rtt.AddHistogram(m.rtt, "t-0")
	return []sdk.MetricFamily{frames, rtt}, nil
}

func TestMetricsCrossGRPC(t *testing.T) {
	m := &metered{rtt: sdk.NewHistogram(0.001, 0.01, 0.1)}
	for _, v := range []float64{0.0005, 0.001, 0.005, 0.05, 3} {
		m.rtt.Observe(v)
	}
	fams, err := sdktest.Start(t, m).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 2 {
		t.Fatalf("got %d families", len(fams))
	}
	for _, f := range fams {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
	if f := fams[0]; f.Type != sdk.Counter || f.Samples[1].Value != 9 || f.Samples[1].LabelValues[1] != "tx" {
		t.Errorf("counter family: %+v", f)
	}
	h := fams[1]
	// 0.001 falls in le="0.001" (upper bounds are inclusive), 3 only in +Inf.
	want := []uint64{2, 3, 4}
	if h.Type != sdk.Histogram || len(h.Buckets) != 3 || h.Samples[0].Count != 5 || h.Samples[0].Sum < 3.05 {
		t.Fatalf("histogram family: %+v", h)
	}
	for i, w := range want {
		if h.Samples[0].BucketCounts[i] != w {
			t.Errorf("bucket le=%v: %d, want %d", h.Buckets[i], h.Samples[0].BucketCounts[i], w)
		}
	}
}

func TestMetricsUnsupported(t *testing.T) {
	_, err := sdktest.Start(t, &kitchen{}).Metrics(context.Background())
	if !errors.Is(err, sdk.ErrUnsupported) {
		t.Fatalf("a plugin without Metrics: %v, want ErrUnsupported", err)
	}
}

func TestMetricFamilyValidate(t *testing.T) {
	for _, f := range []sdk.MetricFamily{
		{Name: "bad-name", Type: sdk.Gauge},
		{Name: "x", Type: 0},
		{Name: "x", Type: sdk.Gauge, Labels: []string{"plugin"}},
		{Name: "x", Type: sdk.Histogram, Labels: []string{"le"}},
		{Name: "x", Type: sdk.Gauge, Labels: []string{"a"}, Samples: []sdk.MetricSample{{}}},
		{Name: "x", Type: sdk.Histogram, Buckets: []float64{1}, Samples: []sdk.MetricSample{{}}},
		{Name: "x", Type: sdk.Counter, Samples: []sdk.MetricSample{{Value: -1}}},
	} {
		if f.Validate() == nil {
			t.Errorf("%+v: valid, want an error", f)
		}
	}
}
