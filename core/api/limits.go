package api

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bound what a client can hold of the server: a connection that
// never sends its headers, sits idle, or never reads its answer is closed,
// and connections beyond MaxConns are closed as soon as they are accepted.
type Limits struct {
	ReadHeader time.Duration // to send the request line and headers
	Idle       time.Duration // between requests on a keep-alive connection
	// Request bounds reading the body and writing the answer of an
	// ordinary request. Streams (the input WebSocket, the LAN capture)
	// have none: they last as long as the client wants.
	Request  time.Duration
	MaxConns int
}

// DefaultLimits are generous for a dashboard (a few connections per tab)
// and a few programs; an input batch of 5,000 events takes ~25 s.
var DefaultLimits = Limits{ReadHeader: 10 * time.Second, Idle: 30 * time.Second, Request: 2 * time.Minute, MaxConns: 256}

// deadlines gives an ordinary request its read and write deadline; a
// stream (rt.stream) has none.
func (s *Server) deadlines(w http.ResponseWriter, rt route) {
	if s.Limits.Request <= 0 || rt.stream {
		return
	}
	rc := http.NewResponseController(w)
	d := time.Now().Add(s.Limits.Request)
	rc.SetReadDeadline(d)
	rc.SetWriteDeadline(d)
}

// capListener closes what it accepts beyond max open connections. Closing
// at once, rather than not accepting (x/net's LimitListener), lets a client
// see the refusal instead of hanging in the kernel's backlog.
type capListener struct {
	net.Listener
	mu   sync.Mutex
	open int
	max  int
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &cappedConn{Conn: c, l: l}, nil
	}
}

type cappedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
