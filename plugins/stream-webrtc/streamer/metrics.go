package streamer

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/locolan/loco/sdk"
)

var _ sdk.Metrics = (*plugin)(nil)

// encodeBuckets: x264 ultrafast takes ~1-3 ms for a thumb and ~5-15 ms for
// 800x600 here; the top buckets catch a starved encoder.
var encodeBuckets = sdk.ExponentialBuckets(0.0005, 2, 12)

// variantMetrics is a variant's encode-time histogram. The encoder counts
// only its total time and frames, so each pulled sample observes the mean
// of the frames encoded since the previous one (one frame nearly always).
type variantMetrics struct {
	mu    sync.Mutex
	enc   *sdk.HistogramValue
	pl    encodeTimer // the encoder the last totals are from
	lastT time.Duration
	lastN uint64
}

func (m *variantMetrics) histogram() *sdk.HistogramValue {
	if m.enc == nil {
		m.enc = sdk.NewHistogram(encodeBuckets...)
	}
	return m.enc
}

// observeEncode is called after each frame out of pl (pump's GStreamer
// samples, encode's libx264 frames).
func (v *variant) observeEncode(pl encodeTimer) {
	t, n := pl.EncodeTime()
	m := &v.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pl != pl { // a new encoder starts its totals at zero
		m.pl, m.lastT, m.lastN = pl, 0, 0
	}
	if n > m.lastN && t >= m.lastT {
		mean := (t - m.lastT).Seconds() / float64(n-m.lastN)
		h := m.histogram()
		for range n - m.lastN {
			h.Observe(mean)
		}
	}
	m.lastT, m.lastN = t, n
}

func (p *plugin) Metrics(ctx context.Context) ([]sdk.MetricFamily, error) {
	p.mu.Lock()
	guests := make([]*guest, 0, len(p.guests))
	for _, g := range p.guests {
		guests = append(guests, g)
	}
	p.mu.Unlock()
	sort.Slice(guests, func(i, j int) bool { return guests[i].in.Index < guests[j].in.Index })

	gv := []string{"guest", "variant"}
	fps := sdk.MetricFamily{Name: "loco_stream_fps", Type: sdk.Gauge, Labels: gv, Help: "Encoded frames sent per second, over the last 2 s."}
	bitrate := sdk.MetricFamily{Name: "loco_stream_bitrate_bits_per_second", Type: sdk.Gauge, Labels: gv, Help: "Video bits sent per second, over the last 2 s."}
	viewers := sdk.MetricFamily{Name: "loco_stream_viewers", Type: sdk.Gauge, Labels: gv, Help: "Viewers connected to the variant."}
	keys := sdk.MetricFamily{Name: "loco_stream_key_frames_total", Type: sdk.Counter, Labels: gv, Help: "Key frames sent (new viewers, PLI/FIR)."}
	out := sdk.MetricFamily{Name: "loco_stream_frames_total", Type: sdk.Counter, Labels: gv, Help: "Encoded frames sent."}
	repeats := sdk.MetricFamily{Name: "loco_stream_repeats_total", Type: sdk.Counter, Labels: gv, Help: "Frames sent again because the screen was still."}
	width := sdk.MetricFamily{Name: "loco_stream_width_pixels", Type: sdk.Gauge, Labels: gv, Help: "Width of the encoded picture; 0 while no encoder runs."}
	enc := sdk.MetricFamily{Name: "loco_stream_encode_seconds", Type: sdk.Histogram, Labels: gv, Buckets: encodeBuckets, Help: "Time the encoder spent on a frame."}
	in := sdk.MetricFamily{Name: "loco_stream_captured_updates_total", Type: sdk.Counter, Labels: []string{"guest"}, Help: "Display updates captured from the guest."}
	for _, g := range guests {
		name := g.in.Name
		sts := g.stats()
		for _, st := range sts {
			fps.Add(st.FPS, name, st.Variant)
			bitrate.Add(st.BitrateBPS, name, st.Variant)
			viewers.Add(float64(st.Viewers), name, st.Variant)
			keys.Add(float64(st.KeyFrames), name, st.Variant)
			out.Add(float64(st.FramesOut), name, st.Variant)
			repeats.Add(float64(st.Repeats), name, st.Variant)
			width.Add(float64(st.Width), name, st.Variant)
		}
		if len(sts) > 0 {
			in.Add(float64(sts[0].FramesIn), name)
		}
		for _, v := range g.variants() {
			v.m.mu.Lock()
			enc.AddHistogram(v.m.histogram(), name, v.name)
			v.m.mu.Unlock()
		}
	}
	return []sdk.MetricFamily{fps, bitrate, viewers, keys, out, repeats, width, enc, in}, nil
}
