package bench

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// The report's plots are inline SVG drawn here: a page with a charting
// library would need it fetched or embedded, and these three kinds of plot
// are a few lines each.

type point struct{ x, y float64 }

type sampleSeries struct {
	Name   string
	Values []float64 // sorted
}

const (
	svgW, svgH             = 440, 270
	padL, padR, padT, padB = 58, 14, 14, 40
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"}

// axes maps data to pixels and draws the frame, ticks and labels.
type axes struct {
	x0, x1, y0, y1 float64
	b              strings.Builder
}

// newAxes draws the frame; xTicks nil means round numbers.
func newAxes(x0, x1, y0, y1 float64, xLabel, yLabel string, xTicks []float64) *axes {
	if x1 <= x0 {
		x0, x1 = x0-1, x1+1
	}
	if y1 <= y0 {
		y0, y1 = y0-1, y1+1
	}
	a := &axes{x0: x0, x1: x1, y0: y0, y1: y1}
	fmt.Fprintf(&a.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" class="plot" font-family="sans-serif" font-size="11">`, svgW, svgH, svgW, svgH)
	fmt.Fprintf(&a.b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padL, padT, svgW-padL-padR, svgH-padT-padB)
	if xTicks == nil {
		xTicks = ticks(x0, x1, 6)
	}
	for _, t := range xTicks {
		px := a.px(t)
		fmt.Fprintf(&a.b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			px, svgH-padB, px, svgH-padB+4, px, svgH-padB+16, tickLabel(t))
	}
	for _, t := range ticks(y0, y1, 5) {
		py := a.py(t)
		fmt.Fprintf(&a.b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, py, svgW-padR, py, padL-4, py+4, tickLabel(t))
	}
	fmt.Fprintf(&a.b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, (padL+svgW-padR)/2, svgH-6, html.EscapeString(xLabel))
	fmt.Fprintf(&a.b, `<text x="12" y="%d" text-anchor="middle" transform="rotate(-90 12 %d)">%s</text>`, (padT+svgH-padB)/2, (padT+svgH-padB)/2, html.EscapeString(yLabel))
	return a
}

func (a *axes) px(x float64) float64 {
	return padL + (x-a.x0)/(a.x1-a.x0)*float64(svgW-padL-padR)
}

func (a *axes) py(y float64) float64 {
	return float64(svgH-padB) - (y-a.y0)/(a.y1-a.y0)*float64(svgH-padT-padB)
}

func (a *axes) polyline(pts []point, color string, step bool) {
	var b strings.Builder
	for i, p := range pts {
		if step && i > 0 {
			fmt.Fprintf(&b, "%.1f,%.1f ", a.px(p.x), a.py(pts[i-1].y))
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", a.px(p.x), a.py(p.y))
	}
	fmt.Fprintf(&a.b, `<polyline class="series" points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.TrimSpace(b.String()), color)
}

func (a *axes) legend(names []string) {
	for i, n := range names {
		y := padT + 14 + 14*i
		fmt.Fprintf(&a.b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`,
			svgW-padR-110, y-9, palette[i%len(palette)], svgW-padR-96, y, html.EscapeString(n))
	}
}

func (a *axes) String() string { return a.b.String() + "</svg>" }

// scatterSVG: every row's value at its guest count, the means joined.
func scatterSVG(name string, pts []point) string {
	x0, x1, y0, y1 := bounds(pts)
	y0 = math.Min(0, y0)
	pad := (x1 - x0) * 0.05
	if pad == 0 {
		pad = 0.5
	}
	// Guest counts are the only x values there are: tick those.
	seen := map[float64]bool{}
	var xt []float64
	for _, p := range pts {
		if !seen[p.x] {
			seen[p.x] = true
			xt = append(xt, p.x)
		}
	}
	sort.Float64s(xt)
	a := newAxes(x0-pad, x1+pad, y0, niceCeil(y1*1.05), "guests", name, xt)
	sums, counts := map[float64]float64{}, map[float64]int{}
	for _, p := range pts {
		fmt.Fprintf(&a.b, `<circle class="point" cx="%.1f" cy="%.1f" r="3" fill="%s" fill-opacity="0.5"/>`, a.px(p.x), a.py(p.y), palette[0])
		sums[p.x] += p.y
		counts[p.x]++
	}
	var means []point
	for x, s := range sums {
		means = append(means, point{x, s / float64(counts[x])})
	}
	sort.Slice(means, func(i, j int) bool { return means[i].x < means[j].x })
	a.polyline(means, palette[0], false)
	return a.String()
}

// histogramSVG: counts in 20 equal bins over all series, a step line each.
func histogramSVG(name string, series []sampleSeries) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		lo, hi = math.Min(lo, s.Values[0]), math.Max(hi, s.Values[len(s.Values)-1])
	}
	if hi <= lo {
		hi = lo + 1
	}
	const bins = 20
	w := (hi - lo) / bins
	var counts [][]float64
	top := 0.0
	for _, s := range series {
		c := make([]float64, bins)
		for _, v := range s.Values {
			c[min(int((v-lo)/w), bins-1)]++
		}
		for _, n := range c {
			top = math.Max(top, n)
		}
		counts = append(counts, c)
	}
	a := newAxes(lo, hi, 0, niceCeil(top*1.1), name, "count", nil)
	var names []string
	for i, c := range counts {
		pts := []point{{lo, 0}}
		for j, n := range c {
			pts = append(pts, point{lo + float64(j)*w, n}, point{lo + float64(j+1)*w, n})
		}
		pts = append(pts, point{hi, 0})
		a.polyline(pts, palette[i%len(palette)], false)
		names = append(names, series[i].Name)
	}
	a.legend(names)
	return a.String()
}

// cdfSVG: the fraction of samples at or below each value.
func cdfSVG(name string, series []sampleSeries) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		lo, hi = math.Min(lo, s.Values[0]), math.Max(hi, s.Values[len(s.Values)-1])
	}
	a := newAxes(lo, hi, 0, 1, name, "fraction ≤ x", nil)
	var names []string
	for i, s := range series {
		pts := make([]point, 0, len(s.Values)+1)
		pts = append(pts, point{s.Values[0], 0})
		for j, v := range s.Values {
			pts = append(pts, point{v, float64(j+1) / float64(len(s.Values))})
		}
		a.polyline(pts, palette[i%len(palette)], true)
		names = append(names, s.Name)
	}
	a.legend(names)
	return a.String()
}

func bounds(pts []point) (x0, x1, y0, y1 float64) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, x1 = math.Min(x0, p.x), math.Max(x1, p.x)
		y0, y1 = math.Min(y0, p.y), math.Max(y1, p.y)
	}
	return
}

// ticks are round numbers between lo and hi, about n of them.
func ticks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	s := niceStep(v / 5)
	return math.Ceil(v/s) * s
}

func tickLabel(t float64) string {
	if math.Abs(t) < 1e-12 {
		return "0"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", t), "0"), ".")
}
