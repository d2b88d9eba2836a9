package api

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerLimits: an idle keep-alive connection is closed after
// Limits.Idle, a connection beyond MaxConns at once, and an ordinary
// request that outlasts Limits.Request loses its answer; the capture
// stream is exempt. Before, 300 idle unauthenticated connections all stayed.
func TestServerLimits(t *testing.T) {
	// start serves with the given limits and returns the address.
	start := func(l Limits) string {
		s := New(staticBackend{}, token, slog.New(slog.NewTextHandler(io.Discard, nil)))
		s.Limits = l
		s.Handle("GET /api/test-slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(600 * time.Millisecond)
			w.Write([]byte(strings.Repeat("x", 4<<20)))
		}))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		s.Serve(ctx, lis)
		return lis.Addr().String()
	}
	short := Limits{ReadHeader: time.Second, Idle: 300 * time.Millisecond, Request: 300 * time.Millisecond, MaxConns: 10}
	addr := start(short)

	// closedWithin: the server closes c (a read ends) within d.
	closedWithin := func(c net.Conn, d time.Duration) (time.Duration, bool) {
		start := time.Now()
		c.SetReadDeadline(start.Add(d))
		_, err := io.Copy(io.Discard, c)
		return time.Since(start), err == nil // EOF, not a timeout
	}
	request := func(c net.Conn, path string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("idle keep-alive closed", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp := request(c, "/api/instances"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		took, closed := closedWithin(c, 5*time.Second)
		t.Logf("idle connection closed after %v (Idle %v)", took, short.Idle)
		if !closed {
			t.Error("an idle keep-alive connection stayed open")
		}
	})

	t.Run("connections beyond the cap closed at once", func(t *testing.T) {
		capped := Limits{ReadHeader: 10 * time.Second, Idle: time.Minute, Request: time.Minute, MaxConns: 3}
		addr := start(capped)
		var conns []net.Conn
		for range capped.MaxConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A request makes sure the server has accepted it.
			if resp := request(c, "/api/instances"); resp.StatusCode != 200 {
				t.Fatalf("a connection within the cap: status %d", resp.StatusCode)
			}
			conns = append(conns, c)
		}
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		took, closed := closedWithin(extra, 3*time.Second) // well under Idle and ReadHeader
		t.Logf("connection %d closed after %v", capped.MaxConns+1, took)
		if !closed {
			t.Errorf("connection %d beyond the cap stayed open", capped.MaxConns+1)
		}
		// Closing the others frees their slots.
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(200 * time.Millisecond)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp := request(c, "/api/instances"); resp.StatusCode != 200 {
			t.Errorf("after closing the others: status %d", resp.StatusCode)
		}
	})

	t.Run("an ordinary request past its deadline loses its answer", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /api/test-slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		if n >= 4<<20 {
			t.Errorf("got %d bytes: the whole answer of a request that outlasted its deadline", n)
		}
	})

	t.Run("streams have no deadline", func(t *testing.T) {
		s := New(staticBackend{}, token, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, p := range []string{"/api/lan/capture", "/api/instances/0/input/ws"} {
			r, _ := http.NewRequest("GET", p, nil)
			if rt, ok := s.routeFor(r); !ok || !rt.stream {
				t.Errorf("%s is not a stream in the route table", p)
			}
		}
		r, _ := http.NewRequest("GET", "/api/instances", nil)
		if rt, ok := s.routeFor(r); !ok || rt.stream {
			t.Error("/api/instances is a stream in the route table")
		}
		for _, p := range []string{"/api/nope", "/api/instances/0/nope"} {
			r, _ := http.NewRequest("GET", p, nil)
			if rt, ok := s.routeFor(r); !ok || rt.stream || rt.h == nil {
				t.Errorf("%s (a 404) gets no request deadline", p)
			}
		}
	})
}
