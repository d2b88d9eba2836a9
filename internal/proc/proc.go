// Package proc reads what loco needs to know about a process from Linux's
// /proc: whether it really runs (a zombie does not), when it started (PIDs
// are reused, start times are not), and its CPU time and resident memory.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture loco runs on.
const ClockTicks = 100

// Stat is the part of /proc/PID/stat loco uses.
type Stat struct {
	State     string // "R", "S", "Z", ...
	StartTick uint64 // start time in clock ticks after boot
	UTime     uint64 // user CPU, clock ticks
	STime     uint64 // system CPU, clock ticks
	RSSPages  int64
}

// Read parses /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parse(pid, string(b))
}

func parse(pid int, s string) (Stat, error) {
	// The command name is in parentheses and may itself hold spaces and
	// parentheses: the fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// Field numbers in proc(5) minus 3: state is field 3.
	var st Stat
	var errs [4]error
	st.State = f[0]
	st.UTime, errs[0] = strconv.ParseUint(f[11], 10, 64)
	st.STime, errs[1] = strconv.ParseUint(f[12], 10, 64)
	st.StartTick, errs[2] = strconv.ParseUint(f[19], 10, 64)
	st.RSSPages, errs[3] = strconv.ParseInt(f[21], 10, 64)
	for _, err := range errs {
		if err != nil {
			return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return st, nil
}

// Alive is true for a process that runs. A zombie is not alive: an orphaned
// process whose new parent never reaps it stays one forever.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := Read(pid)
	return err == nil && st.State != "Z" && st.State != "X"
}

// CPUSeconds is the process's user plus system CPU time.
func (s Stat) CPUSeconds() float64 { return float64(s.UTime+s.STime) / ClockTicks }

// RSSBytes is the process's resident memory.
func (s Stat) RSSBytes() int64 { return s.RSSPages * int64(os.Getpagesize()) }
