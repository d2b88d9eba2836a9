// Package backoff is the exponential backoff of loco's retry loops (the
// core's guest supervisor and plugin host, the stream plugins' reconnect
// and child restarts): a first wait, doubling up to a cap, started over
// once the thing retried is healthy again. It lives in the sdk so that
// plugins, which import nothing else of loco, share it.
package backoff

import "time"

// Backoff yields the waits before successive retries. The zero value waits
// not at all; set First and Max.
type Backoff struct {
	// First is the first wait; with Immediate the first retry has none and
	// First is the second wait.
	First     time.Duration
	Max       time.Duration
	Immediate bool

	next    time.Duration
	started bool
}

// Next is the wait before the next retry.
func (b *Backoff) Next() time.Duration {
	if !b.started {
		b.Reset()
	}
	d := b.next
	b.next = min(max(b.next*2, b.First), b.Max)
	return d
}

// Peek is what Next will return, without counting a retry.
func (b *Backoff) Peek() time.Duration {
	if !b.started {
		b.Reset()
	}
	return b.next
}

// Reset starts over: the thing retried is healthy again.
func (b *Backoff) Reset() {
	b.started = true
	b.next = b.First
	if b.Immediate {
		b.next = 0
	}
}
