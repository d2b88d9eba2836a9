//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func rawEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.LittleEndian.PutUint64(b[0:], 1700000000)
	binary.LittleEndian.PutUint64(b[8:], 123456)
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestDecodeAndFormatEvent(t *testing.T) {
	tests := []struct {
		name     string
		raw      []byte
		wantLine string
		wantOK   bool
	}{
		{"key down a", rawEvent(evKey, 30, 1), "LOCO-INPUT dev=event0 type=1 code=30 value=1", true},
		{"key up a", rawEvent(evKey, 30, 0), "LOCO-INPUT dev=event0 type=1 code=30 value=0", true},
		{"rel x negative", rawEvent(evRel, 0, -5), "LOCO-INPUT dev=event0 type=2 code=0 value=-5", true},
		{"abs y", rawEvent(evAbs, 1, 32767), "LOCO-INPUT dev=event0 type=3 code=1 value=32767", true},
		{"syn skipped", rawEvent(evSyn, 0, 0), "", false},
		{"msc scancode skipped", rawEvent(evMsc, 4, 30), "", false},
		{"led skipped", rawEvent(0x11, 0, 1), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeEvent(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Sec != 1700000000 || ev.Usec != 123456 {
				t.Errorf("timeval = %d.%d", ev.Sec, ev.Usec)
			}
			line, ok := formatEvent("event0", ev)
			if line != tt.wantLine || ok != tt.wantOK {
				t.Errorf("formatEvent = %q, %v; want %q, %v", line, ok, tt.wantLine, tt.wantOK)
			}
		})
	}
}

func TestDecodeEventShort(t *testing.T) {
	if _, err := decodeEvent(make([]byte, 23)); !errors.Is(err, errShortEvent) {
		t.Fatalf("err = %v, want errShortEvent", err)
	}
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (p *lines) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l = append(p.l, fmt.Sprintf(format, args...))
}

// oneByteReader hands out a byte per read to prove records split across
// reads are reassembled.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(b []byte) (int, error) { return o.r.Read(b[:1]) }

func TestCopyEvents(t *testing.T) {
	var stream []byte
	stream = append(stream, rawEvent(evMsc, 4, 0x1e)...)
	stream = append(stream, rawEvent(evKey, 30, 1)...)
	stream = append(stream, rawEvent(evSyn, 0, 0)...)
	stream = append(stream, rawEvent(evKey, 30, 0)...)
	stream = append(stream, 1, 2, 3) // trailing garbage shorter than a record
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": oneByteReader{bytes.NewReader(stream)},
	} {
		t.Run(name, func(t *testing.T) {
			var out lines
			if err := copyEvents(r, "event3", &out); !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want EOF", err)
			}
			want := []string{
				"LOCO-INPUT dev=event3 type=1 code=30 value=1",
				"LOCO-INPUT dev=event3 type=1 code=30 value=0",
			}
			if strings.Join(out.l, "|") != strings.Join(want, "|") {
				t.Errorf("lines = %q, want %q", out.l, want)
			}
		})
	}
}

func TestPowerButtonPowersOff(t *testing.T) {
	presses := 0
	onPowerButton = func() { presses++ }
	t.Cleanup(func() { onPowerButton = powerOff })
	var stream []byte
	stream = append(stream, rawEvent(evKey, keyPower, 1)...)
	stream = append(stream, rawEvent(evKey, keyPower, 0)...)
	stream = append(stream, rawEvent(evKey, 30, 1)...)
	var out lines
	copyEvents(bytes.NewReader(stream), "event2", &out)
	if presses != 1 {
		t.Errorf("power-off ran %d times for one press", presses)
	}
	if !strings.Contains(strings.Join(out.l, "|"), "LOCO-POWEROFF") {
		t.Errorf("no LOCO-POWEROFF line: %q", out.l)
	}
}

func testEnv(t *testing.T) (env, string) {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "sda")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	netDir := filepath.Join(dir, "net")
	if err := os.MkdirAll(filepath.Join(netDir, "eth0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netDir, "eth0", "address"), []byte("52:54:00:12:34:56\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return env{
		diskPaths: []string{filepath.Join(dir, "missing"), disk},
		netDir:    netDir,
		iface:     "eth0",
		hostname:  func() (string, error) { return "pc1", nil },
		ipv4:      func(string) (string, error) { return "10.0.0.5", nil },
	}, disk
}

func TestDispatch(t *testing.T) {
	e, disk := testEnv(t)
	a := newAgent(e)
	// Steps run in order against the same disk.
	steps := []struct{ cmd, want string }{
		{"ping", "OK pong"},
		{"  ping  ", "OK pong"},
		{"echo sync 42", "OK sync 42"},
		{"disk-read", "ERR no marker"},
		{"disk-write", "ERR usage: disk-write TEXT"},
		{"disk-write hello world", "OK written " + disk},
		{"disk-read", "OK hello world"},
		{"disk-write " + strings.Repeat("x", 502), "OK written " + disk},
		{"disk-read", "OK " + strings.Repeat("x", 502)},
		{"disk-write " + strings.Repeat("x", 503), "ERR text too long: 503 bytes, max 502"},
		{"info", "OK name=pc1 mac=52:54:00:12:34:56 ip=10.0.0.5"},
		{"help", "OK clock disk-read disk-write echo help icmp-echos icmp-ping info ping raw-listen raw-recv raw-send raw-stats tcp-connect tcp-listen udp-listen udp-recv udp-send udp-stats"},
		{"frobnicate now", `ERR unknown command "frobnicate"`},
		{"PING", `ERR unknown command "PING"`},
	}
	for _, s := range steps {
		if got := a.dispatch(s.cmd); got != s.want {
			t.Errorf("dispatch(%q) = %q, want %q", s.cmd, got, s.want)
		}
	}
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4096 {
		t.Errorf("disk size changed to %d", len(b))
	}
}

func TestDispatchNoDiskNoNIC(t *testing.T) {
	e, _ := testEnv(t)
	e.diskPaths = []string{"/nonexistent/sda"}
	e.iface = "eth9"
	e.ipv4 = func(string) (string, error) { return "", errors.New("no such interface") }
	a := newAgent(e)
	for cmd, want := range map[string]string{
		"disk-write x": "ERR no disk among /nonexistent/sda",
		"disk-read":    "ERR no disk among /nonexistent/sda",
		"info":         "OK name=pc1 mac=none ip=none",
	} {
		if got := a.dispatch(cmd); got != want {
			t.Errorf("dispatch(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestReplyStaysOneLine(t *testing.T) {
	e, _ := testEnv(t)
	a := newAgent(e)
	a.handlers["bad"] = func(string) (string, error) { return "", errors.New("two\nlines\r") }
	if got, want := a.dispatch("bad"), "ERR two lines "; got != want {
		t.Errorf("dispatch = %q, want %q", got, want)
	}
}

func TestParseMarker(t *testing.T) {
	tests := []struct {
		sector  string
		want    string
		wantErr bool
	}{
		{"LOCOMARK:abc\nrest", "abc", false},
		{"LOCOMARK:abc\x00\x00", "abc", false},
		{"LOCOMARK:", "", false},
		{"LOCOMARK:no newline", "no newline", false},
		{"\x00\x00\x00", "", true},
		{"LOCO", "", true},
	}
	for _, tt := range tests {
		got, err := parseMarker([]byte(tt.sector))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseMarker(%q) = %q, %v", tt.sector, got, err)
		}
	}
}

func TestServe(t *testing.T) {
	e, _ := testEnv(t)
	a := newAgent(e)
	host, guest := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- a.serve(guest) }()

	// A half-written command from an earlier client, the "\n" that a new
	// client sends to resynchronise, CRLF, blank lines and an over-long line.
	go func() {
		_, _ = io.WriteString(host, "pi\n\r\nping\r\n\n"+strings.Repeat("y", maxLineLen+10)+"\necho done\n")
	}()
	r := bufio.NewReader(host)
	want := []string{`ERR unknown command "pi"`, "OK pong", "ERR line too long", "OK done"}
	for _, w := range want {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading reply: %v", err)
		}
		if got != w+"\n" {
			t.Errorf("reply = %q, want %q", got, w)
		}
	}
	host.Close()
	if err := <-done; err == nil {
		t.Error("serve returned nil after the pipe closed")
	}
}

func TestKeyPressesReachTheStreamAids(t *testing.T) {
	var got []uint16
	onKeyPress = func(code uint16) { got = append(got, code) }
	t.Cleanup(func() { onKeyPress = func(uint16) {} })
	var stream []byte
	stream = append(stream, rawEvent(evKey, keyF12, 1)...) // press
	stream = append(stream, rawEvent(evKey, keyF12, 2)...) // auto-repeat
	stream = append(stream, rawEvent(evKey, keyF12, 0)...) // release
	stream = append(stream, rawEvent(evRel, 0, 5)...)
	stream = append(stream, rawEvent(evKey, keyF11, 1)...)
	var out lines
	copyEvents(bytes.NewReader(stream), "event0", &out)
	if len(got) != 2 || got[0] != keyF12 || got[1] != keyF11 {
		t.Errorf("handler saw %v, want [F12 F11] presses only", got)
	}
	if n := len(out.l); n != 5 {
		t.Errorf("echoed %d lines, want all 5 events: %q", n, out.l)
	}
}

func TestStatusLine(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 45, 3, 0, time.UTC)
	cases := []struct {
		peers  []string
		cols   int
		prefix string
	}{
		{nil, 60, " demo-0  10.87.0.10  peers: none yet  "},
		{[]string{"demo-1", "demo-2"}, 60, " demo-0  10.87.0.10  peers: demo-1 demo-2  "},
		{[]string{"a-very-long-peer-name", "another-long-one"}, 40, " demo-0  10.87.0.10  peers: a-"},
	}
	for _, c := range cases {
		got := statusLine("demo-0", "10.87.0.10", c.peers, at, c.cols)
		if len(got) != c.cols || !strings.HasPrefix(got, c.prefix) || !strings.HasSuffix(got, " 21:45:03 ") {
			t.Errorf("statusLine(%v, %d) = %q (%d columns)", c.peers, c.cols, got, len(got))
		}
	}
}

func TestPeerBookForgetsAndSkipsSelf(t *testing.T) {
	b := &peerBook{heard: map[string]time.Time{}}
	now := time.Now()
	b.add("demo-1 10.87.0.11", now)
	b.add("demo-0 10.87.0.10", now)
	b.add("demo-2 10.87.0.12", now.Add(-2*peerTTL))
	if got := b.names("demo-0", now); len(got) != 1 || got[0] != "demo-1" {
		t.Errorf("peers %v, want [demo-1]", got)
	}
}

func TestBigText(t *testing.T) {
	rows := bigText("a-1", 100)
	want := [7]string{
		// a         -          1
		".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
	}
	for y, r := range rows {
		if len(r) != 3*12 {
			t.Fatalf("row %d is %d cells, want 36", y, len(r))
		}
		var got strings.Builder
		for x := 0; x < 10; x += 2 {
			if r[x] == 0 {
				got.WriteByte('#')
			} else {
				got.WriteByte('.')
			}
		}
		if got.String() != want[y] {
			t.Errorf("row %d of a: %q, want %q", y, got.String(), want[y])
		}
	}
	if cut := bigText("demo-0", 20); len(cut[0]) != 20 {
		t.Errorf("a row cut at 20 columns has %d", len(cut[0]))
	}
	if s := cellsToANSI("\x00\x00  "); s != "\x1b[7m  \x1b[0m  " {
		t.Errorf("cellsToANSI = %q", s)
	}
	for r := range bigFont {
		for y, row := range bigFont[r] {
			if len(row) != 5 {
				t.Errorf("glyph %q row %d is %d wide", r, y, len(row))
			}
		}
	}
}
