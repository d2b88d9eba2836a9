//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Linux event types (include/uapi/linux/input-event-codes.h).
const (
	evSyn = 0x00
	evKey = 0x01
	evRel = 0x02
	evAbs = 0x03
	evMsc = 0x04
)

// inputEventSize is sizeof(struct input_event) on 64-bit Linux: a 16-byte
// struct timeval followed by u16 type, u16 code and s32 value.
const inputEventSize = 24

type inputEvent struct {
	Sec, Usec int64
	Type      uint16
	Code      uint16
	Value     int32
}

var errShortEvent = errors.New("short input_event")

func decodeEvent(b []byte) (inputEvent, error) {
	if len(b) < inputEventSize {
		return inputEvent{}, fmt.Errorf("%w: %d bytes, want %d", errShortEvent, len(b), inputEventSize)
	}
	le := binary.LittleEndian
	return inputEvent{
		Sec:   int64(le.Uint64(b[0:8])),
		Usec:  int64(le.Uint64(b[8:16])),
		Type:  le.Uint16(b[16:18]),
		Code:  le.Uint16(b[18:20]),
		Value: int32(le.Uint32(b[20:24])),
	}, nil
}

// formatEvent returns the console line for ev, or false for event types the
// host does not care about (EV_SYN frame markers, EV_MSC scancodes, LEDs...).
func formatEvent(dev string, ev inputEvent) (string, bool) {
	switch ev.Type {
	case evKey, evRel, evAbs:
		return fmt.Sprintf("LOCO-INPUT dev=%s type=%d code=%d value=%d", dev, ev.Type, ev.Code, ev.Value), true
	}
	return "", false
}

// keyPower is KEY_POWER: the ACPI button driver reports QEMU's
// system_powerdown as this key.
const keyPower = 116

// onPowerButton powers the guest off; tests replace it.
var onPowerButton = powerOff

// onKeyPress sees every key press (not repeats or releases) after it was
// echoed; main sets it to the stream aids' handler.
var onKeyPress = func(code uint16) {}

// onKeyEvent sees every key event, releases too (typed commands track Shift).
var onKeyEvent = func(code uint16, value int32) {}

type printer interface {
	Printf(format string, args ...any)
}

// watchInputs rescans dir periodically because input devices appear late
// (evdev binds after modules load) and may come and go (hot-plugged USB).
func watchInputs(dir string, every time.Duration, out printer) {
	var mu sync.Mutex
	open := map[string]bool{}
	for {
		paths, _ := filepath.Glob(filepath.Join(dir, "event*"))
		sort.Strings(paths)
		for _, p := range paths {
			mu.Lock()
			busy := open[p]
			open[p] = true
			mu.Unlock()
			if busy {
				continue
			}
			go func(p string) {
				err := readEvents(p, out)
				out.Printf("LOCO-AGENT input %s closed: %v", filepath.Base(p), err)
				mu.Lock()
				delete(open, p)
				mu.Unlock()
			}(p)
		}
		time.Sleep(every)
	}
}

func readEvents(path string, out printer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open input device: %w", err)
	}
	defer f.Close()
	dev := filepath.Base(path)
	out.Printf("LOCO-AGENT input %s opened", dev)
	return copyEvents(f, dev, out)
}

// copyEvents reads whole input_event records from r until it fails. evdev
// only ever returns whole records, but a plain reader (tests) may not, so
// partial records are carried over to the next read.
func copyEvents(r io.Reader, dev string, out printer) error {
	buf := make([]byte, inputEventSize*64)
	have := 0
	for {
		n, err := r.Read(buf[have:])
		have += n
		off := 0
		for ; have-off >= inputEventSize; off += inputEventSize {
			ev, _ := decodeEvent(buf[off : off+inputEventSize])
			// React first, echo after: the stream benchmarks time the
			// reaction, and a console write can take milliseconds.
			if ev.Type == evKey && ev.Value == 1 && ev.Code != keyPower {
				onKeyPress(ev.Code)
			}
			if ev.Type == evKey {
				onKeyEvent(ev.Code, ev.Value)
			}
			if line, ok := formatEvent(dev, ev); ok {
				out.Printf("%s", line)
			}
			if ev.Type == evKey && ev.Value == 1 && ev.Code == keyPower {
				out.Printf("LOCO-POWEROFF power button pressed")
				onPowerButton()
			}
		}
		have = copy(buf, buf[off:have])
		if err != nil {
			return err
		}
	}
}
