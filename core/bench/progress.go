package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"
)

// progress draws one line that redraws itself on a terminal, and prints a
// line per new message otherwise (a CI log).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	total   int
	start   time.Time
	lastMsg string
	drawn   bool
}

func newProgress(w io.Writer, tty bool, total int) *progress {
	return &progress{w: w, tty: tty, total: max(total, 1), start: time.Now()}
}

const barWidth = 30

// set says step runs are done and the current one is frac done.
func (p *progress) set(step int, frac float64, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := (float64(step) + min(max(frac, 0), 1)) / float64(p.total)
	el := time.Since(p.start).Round(time.Second)
	if !p.tty {
		if msg != p.lastMsg {
			fmt.Fprintf(p.w, "[%3.0f%% %s] %s\n", 100*all, el, msg)
			p.lastMsg = msg
		}
		return
	}
	n := int(all * barWidth)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%% %s  %s", strings.Repeat("█", n), strings.Repeat("░", barWidth-n), 100*all, el, msg)
	p.drawn = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func numCPU() int { return runtime.NumCPU() }
