package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Cluster is what a run needs of a running cluster: input and screenshots
// through loco's API and each guest's console (serial log).
type Cluster interface {
	PressKeys(ctx context.Context, guest int, keys []string) error
	Type(ctx context.Context, guest int, text string) error
	Screenshot(ctx context.Context, guest int) (png []byte, err error)
	// Console is everything guest has written to its serial console so far.
	Console(guest int) (string, error)
}

// GuestResult is one guest's part of one step.
type GuestResult struct {
	Guest      int           `json:"guest"`
	Took       time.Duration `json:"took_ns"`
	Screenshot string        `json:"screenshot,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// StepResult is one step: how long each guest took to reach it.
type StepResult struct {
	Name   string        `json:"name"`
	Took   time.Duration `json:"took_ns"`
	Guests []GuestResult `json:"guests"`
}

// Report is a whole run; a failed run's last step is the one that failed.
type Report struct {
	Scenario string        `json:"scenario"`
	Took     time.Duration `json:"took_ns"`
	Steps    []StepResult  `json:"steps"`
	Failed   string        `json:"failed,omitempty"`
}

// StepError says which step a guest did not reach and where its last
// screenshot is.
type StepError struct {
	Step, Waiting, Screenshot string
	Guest                     int
	Err                       error
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("step %q: guest %d did not reach it: %v", e.Step, e.Guest, e.Err)
	if e.Waiting != "" {
		s += " (waiting for " + e.Waiting + ")"
	}
	if e.Screenshot != "" {
		s += "; last screenshot: " + e.Screenshot
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// pollEvery is how often a waiting guest's screen and console are looked
// at: a screenshot costs the guest's QEMU a few ms of its main loop.
const pollEvery = 500 * time.Millisecond

// Run does the steps in order against c and writes a PNG per guest and
// step into artifacts. It stops at the first step a guest does not reach
// within the step's timeout.
func Run(ctx context.Context, s *Scenario, c Cluster, artifacts string) (*Report, error) {
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return nil, fmt.Errorf("creating the artifacts directory: %w", err)
	}
	rep := &Report{Scenario: s.Name}
	start := time.Now()
	defer func() { rep.Took = time.Since(start) }()
	for n, st := range s.Steps {
		sr := StepResult{Name: st.Name, Guests: make([]GuestResult, len(st.Guests))}
		t0 := time.Now()
		errs := make([]error, len(st.Guests))
		var wg sync.WaitGroup
		for i, g := range st.Guests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				shot := filepath.Join(artifacts, fmt.Sprintf("%02d-%s-guest%d.png", n+1, st.Name, g))
				took, err := runStep(ctx, st, g, c, shot)
				gr := GuestResult{Guest: g, Took: took}
				if _, serr := os.Stat(shot); serr == nil {
					gr.Screenshot = shot
				}
				if err != nil {
					gr.Error = err.Error()
				}
				sr.Guests[i], errs[i] = gr, err
			}()
		}
		wg.Wait()
		sr.Took = time.Since(t0)
		rep.Steps = append(rep.Steps, sr)
		if err := errors.Join(errs...); err != nil {
			rep.Failed = st.Name
			return rep, err
		}
	}
	return rep, nil
}

func runStep(ctx context.Context, st Step, g int, c Cluster, shot string) (time.Duration, error) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	fail := func(waiting string, err error) error {
		// The last look at the screen is what a person needs to see why.
		if b, serr := c.Screenshot(context.WithoutCancel(ctx), g); serr == nil {
			os.WriteFile(shot, b, 0o644)
		} else {
			shot = ""
		}
		return &StepError{Step: st.Name, Guest: g, Waiting: waiting, Screenshot: shot, Err: err}
	}
	// Only console lines written after the step began count for console;
	// console_seen is waited for before any key, so keys reach a guest
	// that is ready for them.
	for _, re := range st.Seen {
		for {
			out, err := c.Console(g)
			if err != nil {
				return 0, fail("", fmt.Errorf("reading the console: %w", err))
			}
			if re.MatchString(out) {
				break
			}
			select {
			case <-ctx.Done():
				return 0, fail(fmt.Sprintf("console_seen /%s/", re), fmt.Errorf("not within %v: %w", st.Timeout, ctx.Err()))
			case <-time.After(pollEvery):
			}
		}
	}
	before, err := c.Console(g)
	if err != nil {
		return 0, fail("", fmt.Errorf("reading the console: %w", err))
	}
	if len(st.Keys) > 0 {
		if err := c.PressKeys(ctx, g, st.Keys); err != nil {
			return 0, fail("", fmt.Errorf("pressing %v: %w", st.Keys, err))
		}
	}
	if st.Type != "" {
		if err := c.Type(ctx, g, st.Type); err != nil {
			return 0, fail("", fmt.Errorf("typing: %w", err))
		}
	}
	consoleOK := st.Console == nil
	var last []byte
	for {
		if !consoleOK {
			out, err := c.Console(g)
			if err != nil {
				return 0, fail("", fmt.Errorf("reading the console: %w", err))
			}
			if len(out) >= len(before) {
				consoleOK = st.Console.MatchString(out[len(before):])
			}
		}
		screenOK, waiting := true, ""
		if len(st.Screen) > 0 || consoleOK {
			b, err := c.Screenshot(ctx, g)
			if err == nil {
				last = b
				screenOK, waiting = screenMatches(b, st.Screen)
			} else if ctx.Err() == nil {
				screenOK, waiting = false, fmt.Sprintf("a screenshot (%v)", err)
			}
		}
		if !consoleOK {
			waiting = fmt.Sprintf("console /%s/", st.Console)
		}
		if consoleOK && screenOK && last != nil {
			if err := os.WriteFile(shot, last, 0o644); err != nil {
				return 0, fmt.Errorf("step %q: saving guest %d's screenshot: %w", st.Name, g, err)
			}
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, fail(waiting, fmt.Errorf("not within %v: %w", st.Timeout, ctx.Err()))
		case <-time.After(pollEvery):
		}
	}
}

// screenMatches checks every rule on a PNG screenshot; when one fails it
// says which and by how much.
func screenMatches(b []byte, rules []Rule) (bool, string) {
	if len(rules) == 0 {
		return true, ""
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Sprintf("a readable screenshot (%v)", err)
	}
	for _, r := range rules {
		if f := r.Fraction(img); f < r.MinFraction {
			return false, fmt.Sprintf("screen region %d,%d %dx%d at %.0f%% #%02x%02x%02x (have %.0f%%, rule at %s)",
				r.X, r.Y, r.W, r.H, 100*r.MinFraction, r.Color.R, r.Color.G, r.Color.B, 100*f, r.Range)
		}
	}
	return true, ""
}

// Fraction is the share of the region's pixels that match the colour; a
// region that does not fit on the screen counts its outside as no match.
func (r Rule) Fraction(img image.Image) float64 {
	b := img.Bounds()
	match := 0
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			if !(image.Point{x + b.Min.X, y + b.Min.Y}).In(b) {
				continue
			}
			cr, cg, cb, _ := img.At(x+b.Min.X, y+b.Min.Y).RGBA()
			if near(cr>>8, r.Color.R, r.Tolerance) && near(cg>>8, r.Color.G, r.Tolerance) && near(cb>>8, r.Color.B, r.Tolerance) {
				match++
			}
		}
	}
	return float64(match) / float64(r.W*r.H)
}

func near(v uint32, want uint8, tol int) bool {
	d := int(v) - int(want)
	return d <= tol && -d <= tol
}
