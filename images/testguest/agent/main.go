//go:build linux

// Command loco-agent runs inside the loco test guest. It reports every input
// event it sees on the consoles and answers control commands that the host
// sends over the guest's second serial port.
//
// It is started (and restarted) by the guest's /init, so it never exits on
// its own: every failure is reported as a LOCO-ERROR line and retried.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Consoles that the host or a person may be watching: the serial log and
// the active VGA virtual terminal.
var consolePaths = []string{"/dev/ttyS0", "/dev/tty0"}

const controlPath = "/dev/ttyS1"

func main() {
	out := openConsoles(consolePaths)
	out.Printf("LOCO-AGENT started pid=%d", os.Getpid())

	// The stream aids react to key presses the input watcher reads, so
	// they are set up first (stream.go).
	aids := startStreamAids(out)
	// The stand-in game's lines go to the serial log only: text on the VGA
	// console would scroll over its panel.
	g := newGame(openConsoles(consolePaths[:1]), defaultEnv(), aids.framebuffer)
	onKeyPress = func(code uint16) { aids.key(code); g.key(code) }
	a := newAgent(defaultEnv())
	// Typed commands' lines go to the serial log only, like the game's.
	kc := newKeyCommands(a, openConsoles(consolePaths[:1]))
	kc.start()
	onKeyEvent = kc.event
	// Input echo goes to the serial console only: on the VGA console every
	// line scrolled a full screen, which vesafb repaints in software (~90
	// ms of guest CPU under TCG per key event, and the markers erased).
	go watchInputs("/dev/input", time.Second, openConsoles(consolePaths[:1]))
	// Clock steps too: a restored guest's screen must look as it was saved.
	go syncClock("/dev/rtc0", openConsoles(consolePaths[:1]))

	if statusEnabled() {
		if tty, err := os.OpenFile("/dev/tty0", os.O_WRONLY|noctty, 0); err == nil {
			startStatus(tty, defaultEnv())
		} else {
			out.Printf("LOCO-ERROR status line: open /dev/tty0: %v", err)
		}
	}
	serveControl(controlPath, a, out)
}

// consoles writes whole lines to every console that could be opened.
type consoles struct {
	mu    sync.Mutex
	paths []string
	files []*os.File
}

// allConsoles are every consoles the agent opened, for reopenConsoles.
var allConsoles struct {
	mu   sync.Mutex
	list []*consoles
}

func openConsoles(paths []string) *consoles {
	c := &consoles{paths: paths}
	c.open()
	allConsoles.mu.Lock()
	allConsoles.list = append(allConsoles.list, c)
	allConsoles.mu.Unlock()
	return c
}

func (c *consoles) open() {
	for _, p := range c.paths {
		// O_NOCTTY: the agent must not acquire a controlling terminal,
		// or a hangup on that console would kill it.
		f, err := os.OpenFile(p, os.O_WRONLY|noctty, 0)
		if err != nil {
			continue
		}
		c.files = append(c.files, f)
	}
}

// reopenConsoles closes every console the agent holds and opens them again.
// After a restore from a snapshot the first serial port's transmitter can
// be stuck: the guest's driver waits for a "transmitter empty" interrupt
// that the restored machine never raises, so every line written from then
// on stays in the kernel's buffer. The last close of a serial tty shuts the
// port down and the next open starts it afresh, interrupts and all; nobody
// else keeps /dev/ttyS0 open (the kernel's console writes by polling).
func reopenConsoles() {
	allConsoles.mu.Lock()
	defer allConsoles.mu.Unlock()
	for _, c := range allConsoles.list {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	for _, c := range allConsoles.list {
		for _, f := range c.files {
			f.Close()
		}
		c.files = nil
	}
	for _, c := range allConsoles.list {
		c.open()
	}
}

// Printf writes one line; each console gets it in a single write call so
// lines from concurrent goroutines (and from other processes) never interleave.
func (c *consoles) Printf(format string, args ...any) {
	line := []byte(fmt.Sprintf(format, args...) + "\n")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.files {
		_, _ = f.Write(line)
	}
}
