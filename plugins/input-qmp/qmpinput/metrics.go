package qmpinput

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/locolan/loco/sdk"
)

var _ sdk.Metrics = (*Plugin)(nil)

// shotBuckets: a screendump of a 640x480 guest takes ~10-30 ms here under
// TCG; a busy host or a big screen several times that.
var shotBuckets = sdk.ExponentialBuckets(0.002, 2, 12)

// inputStats outlive reconfiguration: counters must not go back to zero
// when the core replays Configure.
type inputStats struct {
	mu     sync.Mutex
	events map[[2]string]uint64 // guest, type
	errs   map[[3]string]uint64 // guest, op, reason
	shots  map[string]*sdk.HistogramValue
}

func (p *Plugin) stats() *inputStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		p.st = &inputStats{events: map[[2]string]uint64{}, errs: map[[3]string]uint64{}, shots: map[string]*sdk.HistogramValue{}}
	}
	return p.st
}

func (p *Plugin) guestName(instance uint32) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g, ok := p.guests[instance]; ok {
		return g.in.Name
	}
	return fmt.Sprintf("instance-%d", instance)
}

func eventType(e sdk.InputEvent) string {
	switch {
	case e.Key != nil:
		return "key"
	case e.Rel != nil:
		return "rel"
	case e.Abs != nil:
		return "abs"
	case e.Button != nil:
		return "button"
	case e.Wheel != nil:
		return "wheel"
	}
	return "empty"
}

// errorReason names a failure by the sdk sentinel it carries.
func errorReason(err error) string {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{sdk.ErrInvalid, "invalid"}, {sdk.ErrNoInstance, "no_instance"}, {sdk.ErrGuestNotRunning, "guest_not_running"},
		{sdk.ErrNotReady, "not_ready"}, {sdk.ErrBusy, "busy"}, {context.DeadlineExceeded, "timeout"}, {context.Canceled, "canceled"},
	} {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	return "qmp"
}

func (p *Plugin) recordSend(instance uint32, events []sdk.InputEvent, err error) {
	name, st := p.guestName(instance), p.stats()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.errs[[3]string{name, "send", errorReason(err)}]++
		return
	}
	for _, e := range events {
		st.events[[2]string{name, eventType(e)}]++
	}
}

func (p *Plugin) recordScreenshot(instance uint32, took time.Duration, err error) {
	name, st := p.guestName(instance), p.stats()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.errs[[3]string{name, "screenshot", errorReason(err)}]++
		return
	}
	h := st.shots[name]
	if h == nil {
		h = sdk.NewHistogram(shotBuckets...)
		st.shots[name] = h
	}
	h.Observe(took.Seconds())
}

func (p *Plugin) Metrics(context.Context) ([]sdk.MetricFamily, error) {
	st := p.stats()
	st.mu.Lock()
	defer st.mu.Unlock()
	events := sdk.MetricFamily{Name: "loco_input_events_total", Type: sdk.Counter, Labels: []string{"guest", "type"},
		Help: "Input events delivered to the guest, by type (key, rel, abs, button, wheel)."}
	for _, k := range sortedKeys(st.events) {
		events.Add(float64(st.events[k]), k[0], k[1])
	}
	errs := sdk.MetricFamily{Name: "loco_input_errors_total", Type: sdk.Counter, Labels: []string{"guest", "op", "reason"},
		Help: "Input requests (send, screenshot) that failed, by reason."}
	for _, k := range sortedKeys(st.errs) {
		errs.Add(float64(st.errs[k]), k[0], k[1], k[2])
	}
	shots := sdk.MetricFamily{Name: "loco_input_screenshot_seconds", Type: sdk.Histogram, Labels: []string{"guest"}, Buckets: shotBuckets,
		Help: "Time to take a screenshot: QMP screendump plus PNG encoding."}
	names := make([]string, 0, len(st.shots))
	for n := range st.shots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		shots.AddHistogram(st.shots[n], n)
	}
	return []sdk.MetricFamily{events, errs, shots}, nil
}

func sortedKeys[K [2]string | [3]string](m map[K]uint64) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return fmt.Sprint(ks[i]) < fmt.Sprint(ks[j]) })
	return ks
}
