package sunshine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/backoff"
)

// spawn starts every child (Xvfb, Sunshine) from one goroutine locked to
// its OS thread for the plugin's life: Pdeathsig fires when the thread that
// forked a child exits, and Go retires threads, so children forked from any
// goroutine could be killed at random. With it, no child outlives the
// plugin, even a SIGKILLed one.
var spawn = func() chan<- spawnReq {
	ch := make(chan spawnReq)
	go func() {
		runtime.LockOSThread()
		for r := range ch {
			r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			r.done <- r.cmd.Start()
		}
	}()
	return ch
}()

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawn <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// Backoff between restarts of a child that keeps dying.
const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 30 * time.Second
	// A child that ran this long was healthy; its next death restarts it at once.
	healthyRun = 30 * time.Second
)

// proc keeps one program running: started again with backoff whenever it
// exits, until stopped.
type proc struct {
	name string
	argv []string
	env  []string
	log  string

	mu       sync.Mutex
	pid      int
	starts   int
	lastExit string
	cancel   context.CancelFunc
	done     chan struct{}
}

// status says how the process is.
func (p *proc) status() (pid, starts int, lastExit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid, p.starts, p.lastExit
}

// run starts the supervision loop.
func (p *proc) run() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.loop(ctx)
}

func (p *proc) loop(ctx context.Context) {
	defer close(p.done)
	delay := backoff.Backoff{First: backoffMin, Max: backoffMax}
	for ctx.Err() == nil {
		began := time.Now()
		err := p.once(ctx)
		if ctx.Err() != nil {
			return
		}
		ran := time.Since(began)
		if ran > healthyRun {
			delay.Reset()
		}
		wait := delay.Next()
		sdk.Logger().Warn("child exited; restarting", "child", p.name, "ran", ran.Round(time.Millisecond), "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (p *proc) once(ctx context.Context) error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", p.log, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s starting %s\n", time.Now().Format(time.RFC3339), p.name)
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	if err := start(cmd); err != nil {
		p.mu.Lock()
		p.lastExit = err.Error()
		p.mu.Unlock()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.mu.Lock()
	p.pid = cmd.Process.Pid
	p.starts++
	p.mu.Unlock()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-waited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			err = <-waited
		}
	}
	msg := "exited"
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	p.pid, p.lastExit = 0, msg
	p.mu.Unlock()
	return err
}

// stop ends supervision and the process.
func (p *proc) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
}
