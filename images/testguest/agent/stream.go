//go:build linux

package main

// What the stream tests and benchmarks need from the guest: something that
// changes the screen at a known moment, sound on demand, and motion.
//
//	F12  toggles the marker: the whole VGA console in reverse video, white
//	     on black <-> black on white, so a browser can tell the frame that
//	     shows it by its mean brightness alone
//	F9   toggles the small marker: a white block in the bottom-right fifth
//	     of the framebuffer (160x120 at 800x600), written straight into
//	     video memory. A full-console repaint costs the guest tens of ms
//	     of CPU under TCG; this costs microseconds, so latency measured with it is
//	     the display path's, not the guest's drawing
//	F11  plays a 2 s 440 Hz test tone through /dev/dsp (the guest's sound
//	     card through ALSA's OSS emulation)
//	F10  toggles motion: the whole console redrawn with new text 25 times
//	     a second, for bitrate and CPU measurements of a moving screen
//
// Keys come from the input watcher (input.go), which reads every
// /dev/input/event* device once for the echo and hands each press here.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	keyF9  = 67
	keyF10 = 68
	keyF11 = 87
	keyF12 = 88
)

// Console control sequences (console_codes(4)).
const (
	reverseOn  = "\x1b[?5h"
	reverseOff = "\x1b[?5l"
	// Cursor off, screen blanking off, and the boot messages cleared: an
	// idle screen that never changes by itself is what "static" means in
	// the benchmarks, and an empty one does not scroll (a scroll repaints
	// the whole framebuffer in software) until hundreds of echoed keys.
	staticScreen = "\x1b[?25l\x1b[9;0]\x1b[2J\x1b[H"
)

type streamAids struct {
	tty   *os.File // the VGA console
	dsp   string
	mu    sync.Mutex
	rev   bool
	tone  bool
	move  chan struct{} // non-nil while motion runs; closing it stops motion
	out   printer
	fb    string // the framebuffer device and its sysfs directory
	fbSys string
	fbMap *framebuffer
	fbErr error
	block bool
}

// startStreamAids opens the console the marker and motion draw on.
func startStreamAids(out printer) *streamAids {
	s := &streamAids{dsp: "/dev/dsp", out: out, fb: "/dev/fb0", fbSys: "/sys/class/graphics/fb0"}
	if f, err := os.OpenFile("/dev/tty0", os.O_WRONLY|noctty, 0); err == nil {
		s.tty = f
		f.WriteString(staticScreen)
	} else {
		out.Printf("LOCO-ERROR stream aids: open /dev/tty0: %v", err)
	}
	return s
}

func (s *streamAids) key(code uint16) {
	switch code {
	case keyF12:
		s.toggleMarker()
	case keyF9:
		s.toggleBlock()
	case keyF11:
		go s.playTone(2*time.Second, 440)
	case keyF10:
		s.toggleMotion()
	}
}

// toggleMarker flips the console between normal and reverse video. One
// escape sequence repaints every cell at once.
func (s *streamAids) toggleMarker() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty == nil {
		return
	}
	s.rev = !s.rev
	s.block = false // the repaint covers the small marker
	seq := reverseOff
	if s.rev {
		seq = reverseOn
	}
	s.tty.WriteString(seq)
}

// toggleBlock paints the small marker white, or back to black. The
// framebuffer is mapped once, on the first F9: a toggle is then 120 row
// copies in memory, no system call.
func (s *streamAids) toggleBlock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fbMap == nil {
		fb, err := mapFramebuffer(s.fb, s.fbSys)
		if err != nil {
			s.out.Printf("LOCO-ERROR small marker: %v", err)
			return
		}
		s.fbMap = fb
	}
	s.block = !s.block
	s.fbMap.fillCorner(s.block)
}

// framebuffer is a mapped /dev/fb0 and its geometry.
type framebuffer struct {
	mem              []byte
	w, h, px, stride int
}

func mapFramebuffer(dev, sys string) (*framebuffer, error) {
	var w, h, bpp, stride int
	for _, a := range []struct {
		file   string
		format string
		v      []any
	}{{"virtual_size", "%d,%d", []any{&w, &h}}, {"bits_per_pixel", "%d", []any{&bpp}}, {"stride", "%d", []any{&stride}}} {
		b, err := os.ReadFile(sys + "/" + a.file)
		if err != nil {
			return nil, fmt.Errorf("no framebuffer (boot with vga=0x315 for one): %w", err)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), a.format, a.v...); err != nil {
			return nil, fmt.Errorf("parsing %s/%s %q: %w", sys, a.file, b, err)
		}
	}
	if bpp%8 != 0 || w < 5 || h < 5 || stride < w*bpp/8 {
		return nil, fmt.Errorf("unusable framebuffer: %dx%d, %d bpp, stride %d", w, h, bpp, stride)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	mem, err := syscall.Mmap(int(f.Fd()), 0, stride*h, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", dev, err)
	}
	return &framebuffer{mem: mem, w: w, h: h, px: bpp / 8, stride: stride}, nil
}

// fillCorner fills the bottom-right fifth of the visible area (both ways)
// with white or black, a row at a time with copy (a memmove, many times
// faster than a byte loop under TCG): the shorter the drawing, the less
// often QEMU's 30 ms screen poll catches the block half drawn.
func (fb *framebuffer) fillCorner(white bool) {
	x0, y0 := fb.w-fb.w/5, fb.h-fb.h/5
	row := make([]byte, (fb.w-x0)*fb.px)
	if white {
		for i := range row {
			row[i] = 0xff
		}
	}
	for y := y0; y < fb.h; y++ {
		copy(fb.mem[y*fb.stride+x0*fb.px:], row)
	}
}

func (s *streamAids) toggleMotion() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.move != nil {
		close(s.move)
		s.move = nil
		return
	}
	if s.tty == nil {
		return
	}
	stop := make(chan struct{})
	s.move = stop
	go s.motion(stop)
}

// motion redraws the whole console with shifting text until stop closes.
func (s *streamAids) motion(stop chan struct{}) {
	const pattern = "loco moving screen 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz "
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var b strings.Builder
	for frame := 0; ; frame++ {
		select {
		case <-stop:
			s.tty.WriteString("\x1b[0m\x1b[2J\x1b[H")
			return
		case <-tick.C:
		}
		b.Reset()
		b.WriteString("\x1b[H")
		for row := 0; row < 36; row++ {
			fmt.Fprintf(&b, "\x1b[3%dm", (frame+row)%7+1)
			for col := 0; col < 99; col++ {
				b.WriteByte(pattern[(frame+row*3+col)%len(pattern)])
			}
			b.WriteString("\r\n")
		}
		s.mu.Lock()
		s.tty.WriteString(b.String())
		s.mu.Unlock()
	}
}

// OSS ioctls (linux/soundcard.h).
const (
	sndctlDSPSpeed    = 0xc0045002
	sndctlDSPSetFmt   = 0xc0045005
	sndctlDSPChannels = 0xc0045006
	afmtS16LE         = 0x10
)

// playTone writes a sine wave to the OSS device. Only one tone plays at a
// time; a key pressed while one plays is ignored.
func (s *streamAids) playTone(d time.Duration, hz float64) {
	s.mu.Lock()
	if s.tone {
		s.mu.Unlock()
		return
	}
	s.tone = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.tone = false; s.mu.Unlock() }()
	if err := writeTone(s.dsp, d, hz); err != nil {
		s.out.Printf("LOCO-ERROR tone: %v", err)
		return
	}
	s.out.Printf("LOCO-TONE played %.0f Hz for %s", hz, d)
}

func writeTone(dev string, d time.Duration, hz float64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s (no sound card, or its driver is not loaded): %w", dev, err)
	}
	defer f.Close()
	rate, channels, format := 48000, 2, afmtS16LE
	for _, c := range []struct {
		req uintptr
		v   *int
	}{{sndctlDSPSetFmt, &format}, {sndctlDSPChannels, &channels}, {sndctlDSPSpeed, &rate}} {
		v := int32(*c.v)
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), c.req, uintptr(unsafe.Pointer(&v))); e != 0 {
			return fmt.Errorf("configuring %s: %w", dev, e)
		}
		*c.v = int(v)
	}
	if format != afmtS16LE || channels < 1 {
		return fmt.Errorf("%s accepted format %#x with %d channels, want S16LE", dev, format, channels)
	}
	pcm := sine(rate, channels, d, hz)
	if _, err := f.Write(pcm); err != nil {
		return fmt.Errorf("write %s: %w", dev, err)
	}
	return nil
}

// sine is d of a half-scale sine wave as interleaved S16LE.
func sine(rate, channels int, d time.Duration, hz float64) []byte {
	n := int(d.Seconds() * float64(rate))
	b := make([]byte, 0, n*channels*2)
	for i := 0; i < n; i++ {
		v := int16(16384 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
	}
	return b
}

// framebuffer maps /dev/fb0 once and shares it (the game panel draws on it
// too); the first failure is reported, later calls fail quietly.
func (s *streamAids) framebuffer() (*framebuffer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fbMap != nil {
		return s.fbMap, nil
	}
	if s.fbErr != nil {
		return nil, s.fbErr
	}
	fb, err := mapFramebuffer(s.fb, s.fbSys)
	if err != nil {
		s.fbErr = err
		s.out.Printf("LOCO-ERROR framebuffer: %v", err)
		return nil, err
	}
	s.fbMap = fb
	return fb, nil
}
