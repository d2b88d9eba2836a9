//go:build linux

package main

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// A guest restored from a snapshot (loco run --from), or paused for one to
// be saved, has a system clock that stood still meanwhile: Linux counts
// time with ticks that froze with the VM and reads the CMOS clock only at
// boot. QEMU's CMOS clock (-rtc clock=host, its default) follows the host's
// wall clock even across a restore, because it stores its time as an offset
// from the host clock. So the agent reads the RTC five times a second and,
// each time its seconds turn over, steps the system clock to it when the
// two are more than 1.5 s apart. (A first version waited for the RTC's
// update interrupt instead of polling; no restored guest ever stepped its
// clock with it under TCG, so polling it is: a few port reads a second.)

const (
	rtcRdTime = 0x80247009 // RTC_RD_TIME: struct rtc_time, 9 ints
	rtcPoll   = 200 * time.Millisecond
	// clockTolerance is how far the system clock may be from the RTC before
	// it is stepped; the RTC has whole seconds only.
	clockTolerance = 1500 * time.Millisecond
)

type rtcTime struct {
	Sec, Min, Hour, Mday, Mon, Year, Wday, Yday, Isdst int32
}

// clockState is what the clock command reports.
type clockState struct {
	mu       sync.Mutex
	steps    int
	lastStep time.Duration
	source   string // "rtc", "none" or "error"
}

var clock = &clockState{source: "starting"}

func (c *clockState) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("unix_ms=%d steps=%d last_step_ms=%d source=%s", time.Now().UnixMilli(), c.steps, c.lastStep.Milliseconds(), c.source)
}

func (c *clockState) set(source string) { c.mu.Lock(); c.source = source; c.mu.Unlock() }

// syncClock keeps the system clock on the RTC until the RTC fails.
func syncClock(path string, out printer) {
	f, err := os.Open(path)
	if err != nil {
		clock.set("none")
		out.Printf("LOCO-ERROR clock: %v; the clock is not kept in step after a restore", err)
		return
	}
	defer f.Close()
	fd := f.Fd()
	clock.set("rtc")
	var last int32 = -1
	for {
		time.Sleep(rtcPoll)
		var rt rtcTime
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, rtcRdTime, uintptr(unsafe.Pointer(&rt))); e != 0 {
			clock.set("error")
			out.Printf("LOCO-ERROR clock: RTC_RD_TIME: %v", e)
			return
		}
		if rt.Sec == last {
			continue // wait for the seconds to turn over
		}
		first := last < 0
		last = rt.Sec
		if first {
			continue // the first reading may be anywhere in its second
		}
		// The seconds turned over within the last poll: half of it ago.
		rtc := time.Date(int(rt.Year)+1900, time.Month(rt.Mon+1), int(rt.Mday), int(rt.Hour), int(rt.Min), int(rt.Sec), 0, time.UTC).Add(rtcPoll / 2)
		off := rtc.Sub(time.Now())
		if off > -clockTolerance && off < clockTolerance {
			continue
		}
		tv := syscall.NsecToTimeval(rtc.UnixNano())
		if err := syscall.Settimeofday(&tv); err != nil {
			out.Printf("LOCO-ERROR clock: settimeofday: %v", err)
			continue
		}
		clock.mu.Lock()
		clock.steps++
		clock.lastStep = off
		clock.mu.Unlock()
		// A jump forward this large is the machine having been stopped
		// (a restore, or a save's pause), which can leave the serial
		// console stuck.
		reopenConsoles()
		out.Printf("LOCO-CLOCK stepped %+.3fs to the RTC", off.Seconds())
	}
}
