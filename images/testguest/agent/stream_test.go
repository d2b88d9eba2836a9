//go:build linux

package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSine(t *testing.T) {
	b := sine(48000, 2, 100*time.Millisecond, 440)
	if len(b) != 4800*2*2 {
		t.Fatalf("len %d", len(b))
	}
	var peak float64
	for i := 0; i+1 < len(b); i += 4 {
		l := int16(binary.LittleEndian.Uint16(b[i:]))
		r := int16(binary.LittleEndian.Uint16(b[i+2:]))
		if l != r {
			t.Fatal("channels differ")
		}
		peak = math.Max(peak, math.Abs(float64(l)))
	}
	if peak < 16000 || peak > 16384 {
		t.Errorf("peak %v, want a half-scale sine", peak)
	}
}

type lineSink struct{ l []string }

func (p *lineSink) Printf(format string, args ...any) { p.l = append(p.l, format) }

func TestMarkerToggles(t *testing.T) {
	tty := filepath.Join(t.TempDir(), "tty0")
	f, err := os.Create(tty)
	if err != nil {
		t.Fatal(err)
	}
	s := &streamAids{tty: f, out: &lineSink{}}
	s.key(keyF12)
	s.key(30) // other keys draw nothing
	s.key(keyF12)
	f.Close()
	b, _ := os.ReadFile(tty)
	if got := string(b); got != reverseOn+reverseOff {
		t.Errorf("tty got %q", got)
	}
}

func TestToneWithoutDevice(t *testing.T) {
	out := &lineSink{}
	s := &streamAids{dsp: "/nonexistent/dsp", out: out}
	s.playTone(10*time.Millisecond, 440)
	if len(out.l) != 1 || !strings.HasPrefix(out.l[0], "LOCO-ERROR tone") {
		t.Errorf("lines %q", out.l)
	}
}
