package backoff

import (
	"slices"
	"testing"
	"time"
)

func waits(b *Backoff, n int) []time.Duration {
	var out []time.Duration
	for range n {
		out = append(out, b.Next())
	}
	return out
}

// TestSequences: the supervisor's (1 s doubling to 60 s) and the plugin
// host's (at once, then 250 ms doubling to 10 s) sequences, and Reset.
func TestSequences(t *testing.T) {
	s := time.Second
	guest := &Backoff{First: s, Max: time.Minute}
	if got, want := waits(guest, 8), []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s}; !slices.Equal(got, want) {
		t.Errorf("guest: %v, want %v", got, want)
	}
	guest.Reset()
	if got := guest.Peek(); got != s {
		t.Errorf("after Reset: %v", got)
	}
	ms := time.Millisecond
	plugin := &Backoff{First: 250 * ms, Max: 10 * s, Immediate: true}
	if got, want := waits(plugin, 8), []time.Duration{0, 250 * ms, 500 * ms, s, 2 * s, 4 * s, 8 * s, 10 * s}; !slices.Equal(got, want) {
		t.Errorf("plugin: %v, want %v", got, want)
	}
	plugin.Reset()
	if got := plugin.Next(); got != 0 {
		t.Errorf("plugin after Reset: %v", got)
	}
}
