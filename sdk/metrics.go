package sdk

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	pluginv1 "github.com/locolan/loco/sdk/proto/loco/plugin/v1"
)

// Metrics is the optional interface a plugin of any kind implements to put
// series on loco's /metrics. The core calls it at scrape time and adds a
// `plugin` label (the plugin's name) to every series, so a plugin names
// only its own labels (guest, variant, ...). A plugin without it is left
// out of /metrics; check it at compile time with
// `var _ sdk.Metrics = (*plugin)(nil)`.
type Metrics interface {
	Metrics(ctx context.Context) ([]MetricFamily, error)
}

// MetricType is a family's Prometheus type.
type MetricType int

const (
	Counter MetricType = iota + 1
	Gauge
	Histogram
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	}
	return fmt.Sprintf("MetricType(%d)", int(t))
}

// MetricFamily is one metric name with its samples. Name is the full
// Prometheus name ("loco_lan_frames_total": counters end in _total, units
// in the name, seconds and bytes).
type MetricFamily struct {
	Name   string
	Help   string
	Type   MetricType
	Labels []string // label names, the same for every sample; not "plugin"
	// Buckets are a histogram's upper bounds, ascending, without +Inf.
	Buckets []float64
	Samples []MetricSample
}

// MetricSample is one series of a family.
type MetricSample struct {
	LabelValues []string // in the order of the family's Labels
	Value       float64  // a counter's or gauge's value
	// A histogram's count, sum and cumulative count per bucket bound.
	Count        uint64
	Sum          float64
	BucketCounts []uint64
}

// Add appends a counter or gauge sample.
func (f *MetricFamily) Add(value float64, labelValues ...string) {
	f.Samples = append(f.Samples, MetricSample{LabelValues: labelValues, Value: value})
}

// AddHistogram appends a histogram's current state as a sample; the family
// takes its buckets from the first one added.
func (f *MetricFamily) AddHistogram(h *HistogramValue, labelValues ...string) {
	s := h.Snapshot()
	if f.Buckets == nil {
		f.Buckets = s.Buckets
	}
	f.Samples = append(f.Samples, MetricSample{LabelValues: labelValues, Count: s.Count, Sum: s.Sum, BucketCounts: s.BucketCounts})
}

// HistogramValue counts observations into fixed buckets; safe for
// concurrent use. The zero value is not usable: make one with NewHistogram.
type HistogramValue struct {
	mu      sync.Mutex
	buckets []float64
	counts  []uint64 // per bucket, not cumulative; the last is +Inf
	count   uint64
	sum     float64
}

// NewHistogram makes a histogram with these upper bounds (sorted here).
func NewHistogram(buckets ...float64) *HistogramValue {
	b := append([]float64(nil), buckets...)
	sort.Float64s(b)
	return &HistogramValue{buckets: b, counts: make([]uint64, len(b)+1)}
}

// ExponentialBuckets is n bounds from start, each factor times the last.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// Observe records one value.
func (h *HistogramValue) Observe(v float64) {
	i := sort.SearchFloat64s(h.buckets, v) // first bound >= v: Prometheus's le
	h.mu.Lock()
	h.counts[i]++
	h.count++
	h.sum += v
	h.mu.Unlock()
}

// HistogramSnapshot is a histogram at one instant, buckets cumulative.
type HistogramSnapshot struct {
	Buckets      []float64
	BucketCounts []uint64
	Count        uint64
	Sum          float64
}

// Snapshot reads the histogram.
func (h *HistogramValue) Snapshot() HistogramSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := HistogramSnapshot{Buckets: h.buckets, BucketCounts: make([]uint64, len(h.buckets)), Count: h.count, Sum: h.sum}
	var acc uint64
	for i := range h.buckets {
		acc += h.counts[i]
		s.BucketCounts[i] = acc
	}
	return s
}

// Validate checks what Prometheus would refuse, so a plugin author sees it
// in a unit test rather than as a warning in loco's log.
func (f MetricFamily) Validate() error {
	if !validMetricName(f.Name) {
		return fmt.Errorf("metric %q: not a Prometheus metric name", f.Name)
	}
	if f.Type < Counter || f.Type > Histogram {
		return fmt.Errorf("metric %s: unknown type %v", f.Name, f.Type)
	}
	for _, l := range f.Labels {
		if !validLabelName(l) || l == "plugin" || strings.HasPrefix(l, "__") || (f.Type == Histogram && l == "le") {
			return fmt.Errorf("metric %s: label %q is not allowed", f.Name, l)
		}
	}
	if !sort.Float64sAreSorted(f.Buckets) {
		return fmt.Errorf("metric %s: buckets are not ascending", f.Name)
	}
	for i, s := range f.Samples {
		if len(s.LabelValues) != len(f.Labels) {
			return fmt.Errorf("metric %s sample %d: %d label values for %d labels", f.Name, i, len(s.LabelValues), len(f.Labels))
		}
		if f.Type == Histogram && len(s.BucketCounts) != len(f.Buckets) {
			return fmt.Errorf("metric %s sample %d: %d bucket counts for %d buckets", f.Name, i, len(s.BucketCounts), len(f.Buckets))
		}
		if f.Type == Counter && (s.Value < 0 || math.IsNaN(s.Value)) {
			return fmt.Errorf("metric %s sample %d: a counter cannot be %v", f.Name, i, s.Value)
		}
	}
	return nil
}

func validMetricName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func validLabelName(s string) bool { return !strings.Contains(s, ":") && validMetricName(s) }

func metricsToProto(fams []MetricFamily) *pluginv1.MetricsResponse {
	out := &pluginv1.MetricsResponse{}
	for _, f := range fams {
		pf := &pluginv1.MetricFamily{Name: f.Name, Help: f.Help, Type: pluginv1.MetricFamily_Type(f.Type),
			LabelNames: f.Labels, BucketBounds: f.Buckets}
		for _, s := range f.Samples {
			pf.Samples = append(pf.Samples, &pluginv1.Sample{LabelValues: s.LabelValues, Value: s.Value,
				Count: s.Count, Sum: s.Sum, BucketCounts: s.BucketCounts})
		}
		out.Families = append(out.Families, pf)
	}
	return out
}

func metricsFromProto(r *pluginv1.MetricsResponse) []MetricFamily {
	var out []MetricFamily
	for _, pf := range r.Families {
		f := MetricFamily{Name: pf.Name, Help: pf.Help, Type: MetricType(pf.Type), Labels: pf.LabelNames, Buckets: pf.BucketBounds}
		for _, s := range pf.Samples {
			f.Samples = append(f.Samples, MetricSample{LabelValues: s.LabelValues, Value: s.Value,
				Count: s.Count, Sum: s.Sum, BucketCounts: s.BucketCounts})
		}
		out = append(out, f)
	}
	return out
}

func (s *baseServer) Metrics(ctx context.Context, _ *pluginv1.MetricsRequest) (*pluginv1.MetricsResponse, error) {
	m, ok := s.impl.(Metrics)
	if !ok {
		return nil, rpcError(fmt.Errorf("plugin %s reports no metrics: %w", s.impl.Info().Name, ErrUnsupported))
	}
	fams, err := m.Metrics(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	return metricsToProto(fams), nil
}

// Metrics asks the plugin for its series; ErrUnsupported when it has none
// (also from plugins built before the RPC existed).
func (c *Client) Metrics(ctx context.Context) ([]MetricFamily, error) {
	r, err := c.base.Metrics(ctx, &pluginv1.MetricsRequest{})
	if err != nil {
		return nil, fmt.Errorf("asking the plugin for metrics: %w", fromRPC(err))
	}
	return metricsFromProto(r), nil
}
