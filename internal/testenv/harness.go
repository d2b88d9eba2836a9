package testenv

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitFor polls ok every 50 ms until it holds, and fails the test after d
// saying what it waited for. It returns how long it took, for the test to
// log: ceilings are generous, the measured figure is what to read.
func WaitFor(t testing.TB, what string, d time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// SyncBuffer is a bytes.Buffer that a child process's output and the test
// can use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
