package main

import "strings"

// schedtraceOff is GODEBUG's schedtrace at its largest value (ms, an
// int32): a scheduler trace line on stderr every 24.8 days, in effect never.
const schedtraceOff = "schedtrace=2147483647"

// keepSysmonAwake returns env with schedtraceOff added to GODEBUG, and
// whether it had to add it.
//
// Why: the Go runtime's monitor thread (sysmon) goes to deep sleep when
// every P is idle, and the first system call after that wakes it into its
// fastest cycle, 50 sleeps of 20 µs, before it backs off again. This plugin
// goes idle and busy again many times a second (a frame read, encoded and
// sent, then nothing until the next), so sysmon's bursts cost more than the
// encoders' conversion work: about a fifth of the plugin's CPU on a moving
// screen, in perf, on this nested-virtualised machine where every wake-up
// is dear. A positive schedtrace is the runtime's one switch that keeps
// sysmon out of deep sleep; it then settles into a steady 10 ms cycle.
// BenchmarkDensity: one moving 800x600 guest 13.1-13.9% -> 10.4-10.9% of a
// core, side by side in one run (docs/streaming.md).
func keepSysmonAwake(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		found = true
		for _, s := range strings.Split(v, ",") {
			if strings.HasPrefix(s, "schedtrace=") {
				// Set by someone who wants the trace: theirs wins.
				return env, false
			}
		}
		if v == "" {
			kv += schedtraceOff
		} else {
			kv += "," + schedtraceOff
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+schedtraceOff)
	}
	return out, true
}

// goProcs is the GOMAXPROCS the plugin runs with, and whether to set it:
// one, unless the user set GOMAXPROCS (theirs wins).
//
// Why one: the plugin's heavy work is in libx264 and libyuv, cgo calls
// that leave their P once they outlast a sysmon tick, so nine encoders
// still use every core. What runs on the Ps is short Go work between
// them (a frame read, a hand-off, RTP packets), and with a second P each
// hand-off wakes a thread that spins, finds nothing and sleeps again:
// context switches, dear on this nested-virtualised machine. BenchmarkDensity,
// alternating in one run (9 rounds each): one moving thumbnail 2.3% -> 2.0%
// of a core, one moving full stream 9.9% -> 9.3%, the grid unchanged at the
// same frame rates (docs/streaming.md).
func goProcs(env string) (int, bool) {
	if env != "" {
		return 0, false
	}
	return 1, true
}
