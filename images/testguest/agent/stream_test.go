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

func TestSmallMarkerPaintsTheCorner(t *testing.T) {
	dir := t.TempDir()
	// 10x10 at 24 bpp with a padded stride, like vesafb's 800x600x24.
	const w, h, px, stride = 10, 10, 3, 32
	for name, v := range map[string]string{"virtual_size": "10,10\n", "bits_per_pixel": "24\n", "stride": "32\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fb := filepath.Join(dir, "fb0")
	if err := os.WriteFile(fb, make([]byte, stride*h), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &streamAids{fb: fb, fbSys: dir, out: &lineSink{}}
	s.key(keyF9)
	mem, _ := os.ReadFile(fb)
	for y := 0; y < h; y++ {
		for x := 0; x < stride; x++ {
			want := byte(0)
			if y >= 8 && x >= 8*px && x < w*px {
				want = 0xff
			}
			if mem[y*stride+x] != want {
				t.Fatalf("byte %d of row %d is %#x, want %#x", x, y, mem[y*stride+x], want)
			}
		}
	}
	s.key(keyF9)
	mem, _ = os.ReadFile(fb)
	for i, b := range mem {
		if b != 0 {
			t.Fatalf("byte %d is %#x after the second F9, want the block black again", i, b)
		}
	}
	out := &lineSink{}
	(&streamAids{fb: fb, fbSys: filepath.Join(dir, "none"), out: out}).key(keyF9)
	if len(out.l) != 1 || !strings.HasPrefix(out.l[0], "LOCO-ERROR small marker") {
		t.Errorf("without a framebuffer the agent said %q", out.l)
	}
}
