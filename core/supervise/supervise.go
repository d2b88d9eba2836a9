// Package supervise keeps a plan's guests running: it starts or reattaches
// each, restarts one that dies with exponential backoff, records events, and
// stops them all on request.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/runtime"
	"github.com/locolan/loco/sdk/backoff"
)

// Policy says how hard the supervisor tries.
type Policy struct {
	// InitialBackoff is the wait before the first restart; it doubles up
	// to MaxBackoff, and starts over once a guest has run for ResetAfter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	ResetAfter     time.Duration
	// Limit is how many restarts in a row before a guest is given up;
	// 0 means never give up.
	Limit int
}

// DefaultPolicy restarts quickly at first and backs off to a minute.
var DefaultPolicy = Policy{InitialBackoff: time.Second, MaxBackoff: time.Minute, ResetAfter: time.Minute}

// State of a guest, as the supervisor sees it.
type State string

const (
	Starting   State = "starting"
	Running    State = "running"
	Restarting State = "restarting"
	Stopping   State = "stopping"
	Stopped    State = "stopped"
	Failed     State = "failed"
)

// GuestStatus is a snapshot of one guest.
type GuestStatus struct {
	Index      int       `json:"index"`
	Name       string    `json:"name"`
	State      State     `json:"state"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"last_exit,omitempty"`
	Reattached bool      `json:"reattached"`
}

// Event is something that happened to a guest.
type Event struct {
	Time    time.Time `json:"time"`
	Guest   string    `json:"guest"`
	Message string    `json:"message"`
}

// Supervisor watches the guests of one plan.
type Supervisor struct {
	rt     runtime.Runtime
	log    *slog.Logger
	policy Policy

	mu     sync.Mutex
	slots  []*slot
	events []Event
	wg     sync.WaitGroup
}

type slot struct {
	pg     plan.Guest
	g      runtime.Guest
	st     GuestStatus
	detach chan struct{} // closed: stop watching, leave the guest alone
}

// New makes a supervisor.
func New(rt runtime.Runtime, log *slog.Logger, p Policy) *Supervisor {
	return &Supervisor{rt: rt, log: log, policy: p}
}

const maxEvents = 200

func (s *Supervisor) event(guest, msg string, attrs ...any) {
	s.log.Info(msg, append([]any{"guest", guest}, attrs...)...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == maxEvents {
		copy(s.events, s.events[1:])
		s.events = s.events[:maxEvents-1]
	}
	s.events = append(s.events, Event{Time: time.Now(), Guest: guest, Message: msg})
}

// Start brings every guest of the plan up: a running guest is reattached,
// any other is started. If a guest cannot be started, the guests this call
// started are stopped again and the error says which failed.
func (s *Supervisor) Start(ctx context.Context, p *plan.Plan) error {
	var started []*slot
	for _, pg := range p.Guests {
		sl := &slot{pg: pg, st: GuestStatus{Index: pg.Index, Name: pg.Name, State: Starting}, detach: make(chan struct{})}
		g, found, err := s.rt.Find(ctx, pg)
		if err == nil && !found {
			g, err = s.rt.Start(ctx, pg)
		}
		if err != nil {
			for _, o := range started {
				if !o.g.Reattached() {
					_ = s.rt.Stop(context.Background(), o.g, 0)
				}
			}
			return fmt.Errorf("bringing up guest %s: %w", pg.Name, err)
		}
		sl.g = g
		sl.st.State, sl.st.PID, sl.st.Started, sl.st.Reattached = Running, g.PID(), g.Started(), found
		if found {
			s.event(pg.Name, "reattached to running guest", "pid", g.PID())
		} else {
			s.event(pg.Name, "guest started", "pid", g.PID())
		}
		started = append(started, sl)
	}
	s.mu.Lock()
	s.slots = started
	s.mu.Unlock()
	for _, sl := range started {
		s.wg.Add(1)
		go s.watch(sl)
	}
	return nil
}

// watch restarts the slot's guest whenever it dies, until detached.
func (s *Supervisor) watch(sl *slot) {
	defer s.wg.Done()
	backoff := &backoff.Backoff{First: s.policy.InitialBackoff, Max: s.policy.MaxBackoff}
	inARow := 0
	for {
		s.mu.Lock()
		g := sl.g
		s.mu.Unlock()
		select {
		case <-sl.detach:
			return
		case <-g.Exited():
		}
		select {
		case <-sl.detach: // a stop we asked for, not a crash
			return
		default:
		}
		if time.Since(g.Started()) > s.policy.ResetAfter {
			backoff.Reset()
			inARow = 0
		}
		s.setState(sl, Restarting, g.ExitReason())
		s.event(sl.pg.Name, "guest exited; restarting", "reason", g.ExitReason(), "backoff", backoff.Peek())
		for {
			if s.policy.Limit > 0 && inARow >= s.policy.Limit {
				s.setState(sl, Failed, g.ExitReason())
				s.event(sl.pg.Name, "guest failed too often; giving up", "restarts", inARow)
				<-sl.detach
				return
			}
			select {
			case <-sl.detach:
				return
			case <-time.After(backoff.Next()):
			}
			inARow++
			ng, err := s.rt.Start(context.Background(), sl.pg)
			if err != nil {
				s.event(sl.pg.Name, "restart failed", "err", err.Error())
				continue
			}
			s.mu.Lock()
			sl.g = ng
			sl.st.State, sl.st.PID, sl.st.Started, sl.st.Reattached = Running, ng.PID(), ng.Started(), false
			sl.st.Restarts++
			s.mu.Unlock()
			s.event(sl.pg.Name, "guest restarted", "pid", ng.PID())
			break
		}
	}
}

func (s *Supervisor) setState(sl *slot, st State, lastExit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl.st.State = st
	if lastExit != "" {
		sl.st.LastExit = lastExit
	}
}

// Status is a snapshot of every guest.
func (s *Supervisor) Status() []GuestStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GuestStatus, len(s.slots))
	for i, sl := range s.slots {
		out[i] = sl.st
	}
	return out
}

// Events are the most recent events, oldest first.
func (s *Supervisor) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Detach stops supervising and leaves every guest running, for a loco that
// exits while its guests stay up.
func (s *Supervisor) Detach() {
	s.mu.Lock()
	for _, sl := range s.slots {
		select {
		case <-sl.detach:
		default:
			close(sl.detach)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Stop powers every guest down in parallel, each with grace to shut down
// on its own before it is quit.
func (s *Supervisor) Stop(ctx context.Context, grace time.Duration) error {
	s.Detach()
	s.mu.Lock()
	slots := append([]*slot(nil), s.slots...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(slots))
	for i, sl := range slots {
		s.setState(sl, Stopping, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.rt.Stop(ctx, sl.g, grace); err != nil {
				errs[i] = fmt.Errorf("stopping guest %s: %w", sl.pg.Name, err)
				return
			}
			s.setState(sl, Stopped, "")
			s.event(sl.pg.Name, "guest stopped")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
