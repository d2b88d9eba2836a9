package qmp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// qemuBinary is the emulator the tests talk to; the package itself never
// starts one, so this is the only place that names it.
const qemuBinary = "qemu-system-x86_64"

// shortDir is a temporary directory with a short path: unix socket paths
// are limited to 108 bytes, which t.TempDir's long names can exceed.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// qemuProc is a QEMU started by a test; it is killed in t.Cleanup.
type qemuProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

func startQEMU(t *testing.T, args []string) *qemuProc {
	t.Helper()
	p := &qemuProc{cmd: exec.Command(qemuBinary, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", qemuBinary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for QEMU to exit on its own.
func (p *qemuProc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("qemu exited with %v; stderr:\n%s", p.err, p.stderr.String())
		}
	case <-time.After(timeout):
		t.Errorf("qemu still running %s after quit", timeout)
	}
}

// dialQMP dials path until QEMU has created the socket and greets, failing
// fast if QEMU exits (which is how it rejects a command line).
func dialQMP(t *testing.T, p *qemuProc, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := Dial(ctx, path)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		select {
		case <-p.done:
			t.Fatalf("qemu exited (%v) before QMP on %s answered; stderr:\n%s", p.err, path, p.stderr.String())
		case <-ctx.Done():
			t.Fatalf("QMP on %s never answered: %v; stderr:\n%s", path, err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dialing QMP %s: %v", path, err)
		}
	}
}
