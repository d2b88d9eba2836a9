package scenarios

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/gopacket/pcapgo"
)

// The API runs no commands in a guest, but it types and it captures the
// LAN. The test guest's agent takes its control commands from the
// keyboard too (F8, the command, Enter) and broadcasts each reply to UDP
// replyPort (images/testguest/README.md), so a scenario types a command
// through POST /input and reads the answer from GET /api/lan/capture.
// The same capture times the traffic the commands make, on the wire.
const (
	replyPort   = 4245
	replyPrefix = "LOCO-REPLY "
)

// frame is what the capture shows of one frame.
type frame struct {
	at      time.Time
	size    int // bytes on the wire (the original length, whatever the snaplen)
	src     string
	dst     string
	ethType uint16
	udpDst  int // 0 unless IPv4 UDP
	payload []byte
}

// parseFrame reads the Ethernet, IPv4 and UDP headers of a captured frame.
func parseFrame(at time.Time, size int, b []byte) (frame, bool) {
	if len(b) < 14 {
		return frame{}, false
	}
	f := frame{at: at, size: size, dst: macString(b[0:6]), src: macString(b[6:12]), ethType: binary.BigEndian.Uint16(b[12:14])}
	ip := b[14:]
	if f.ethType != 0x0800 || len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
		return f, true
	}
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return f, true // a later fragment has no UDP header
	}
	udp := ip[ihl:]
	f.udpDst = int(binary.BigEndian.Uint16(udp[2:4]))
	f.payload = udp[8:]
	if n := int(binary.BigEndian.Uint16(udp[4:6])) - 8; n >= 0 && n < len(f.payload) {
		f.payload = f.payload[:n] // Ethernet padding
	}
	return f, true
}

func macString(b []byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

// agentReply is one reply of a typed command.
type agentReply struct {
	guest, line, reply string
	seq                int
}

// parseReply reads "LOCO-REPLY NAME SEQ\tLINE\tREPLY".
func parseReply(p []byte) (agentReply, bool) {
	rest, ok := strings.CutPrefix(string(p), replyPrefix)
	if !ok {
		return agentReply{}, false
	}
	parts := strings.SplitN(rest, "\t", 3)
	if len(parts) != 3 {
		return agentReply{}, false
	}
	var r agentReply
	if _, err := fmt.Sscanf(parts[0], "%s %d", &r.guest, &r.seq); err != nil {
		return agentReply{}, false
	}
	r.line, r.reply = parts[1], parts[2]
	return r, true
}

// tally counts the captured frames that match, with the first and last
// frame's time.
type tally struct {
	match       func(frame) bool
	frames      int
	bytes       int
	first, last time.Time
}

func (t *tally) add(f frame) {
	if t.frames == 0 {
		t.first = f.at
	}
	t.frames++
	t.bytes += f.size
	t.last = f.at
}

// rate is frames/s and Mbit/s between the first and the last frame.
func (t *tally) rate() (pps, mbit float64, ok bool) {
	d := t.last.Sub(t.first).Seconds()
	if t.frames < 2 || d <= 0 {
		return 0, 0, false
	}
	// n frames span n-1 gaps; so do their bytes but the first frame's.
	return float64(t.frames-1) / d, float64(t.bytes-t.bytes/t.frames) * 8 / d / 1e6, true
}

// agents types commands into guests and reads their replies off the LAN.
type agents struct {
	c       *client
	cancel  context.CancelFunc
	mu      sync.Mutex
	seen    map[string]bool            // "guest seq": the copy of a reply already taken
	waits   map[string]chan agentReply // by guest name
	queued  map[string][]agentReply    // replies nobody waited for yet
	tallies []*tally
	err     error // why the capture ended
	done    chan struct{}
}

// startAgents opens the LAN capture the replies arrive on.
func startAgents(ctx context.Context, c *client) (*agents, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/lan/capture?snaplen=1600", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// No timeout: the capture lasts as long as the scenario.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET /api/lan/capture: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /api/lan/capture: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	a := &agents{c: c, cancel: cancel, seen: map[string]bool{}, waits: map[string]chan agentReply{}, queued: map[string][]agentReply{}, done: make(chan struct{})}
	go a.read(resp.Body)
	return a, nil
}

func (a *agents) close() { a.cancel(); <-a.done }

func (a *agents) read(body io.ReadCloser) {
	defer close(a.done)
	defer body.Close()
	r, err := pcapgo.NewReader(body)
	if err == nil {
		for {
			data, ci, rerr := r.ReadPacketData()
			if rerr != nil {
				err = rerr
				break
			}
			if f, ok := parseFrame(ci.Timestamp, ci.Length, data); ok {
				a.frame(f)
			}
		}
	}
	a.mu.Lock()
	a.err = fmt.Errorf("the LAN capture ended: %w", err)
	a.mu.Unlock()
}

func (a *agents) frame(f frame) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tallies {
		if t.match(f) {
			t.add(f)
		}
	}
	if f.udpDst != replyPort {
		return
	}
	r, ok := parseReply(f.payload)
	if !ok {
		return
	}
	key := fmt.Sprintf("%s %d", r.guest, r.seq)
	if a.seen[key] {
		return
	}
	a.seen[key] = true
	a.queued[r.guest] = append(a.queued[r.guest], r)
	if w := a.waits[r.guest]; w != nil {
		select {
		case w <- r:
		default:
		}
	}
}

// count starts counting the frames that match.
func (a *agents) count(match func(frame) bool) *tally {
	t := &tally{match: match}
	a.mu.Lock()
	a.tallies = append(a.tallies, t)
	a.mu.Unlock()
	return t
}

// read a tally under the lock the capture writes it with.
func (a *agents) snapshot(t *tally) tally {
	a.mu.Lock()
	defer a.mu.Unlock()
	return *t
}

// run types a command into a guest and waits for its reply: the text
// after "OK ", or an error with the "ERR " reply.
func (a *agents) run(ctx context.Context, index int, guest, line string, timeout time.Duration) (string, error) {
	a.mu.Lock()
	a.queued[guest] = nil // replies to commands given up on
	w := make(chan agentReply, 1)
	a.waits[guest] = w
	a.mu.Unlock()
	defer func() { a.mu.Lock(); delete(a.waits, guest); a.mu.Unlock() }()
	ev, _ := json.Marshal(map[string]any{"events": []any{map[string]any{"key": "f8"}, map[string]any{"text": line + "\n"}}})
	if _, err := a.c.do(ctx, "POST", fmt.Sprintf("/api/instances/%d/input", index), string(ev)); err != nil {
		return "", fmt.Errorf("typing %q into %s: %w", line, guest, err)
	}
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		var got *agentReply
		for i, r := range a.queued[guest] {
			if r.line == line {
				got = &a.queued[guest][i]
				a.queued[guest] = a.queued[guest][i+1:]
				break
			}
		}
		cerr := a.err
		a.mu.Unlock()
		if got != nil {
			if rest, ok := strings.CutPrefix(got.reply, "OK "); ok {
				return rest, nil
			}
			return "", fmt.Errorf("%s: %q: %s", guest, line, got.reply)
		}
		if cerr != nil {
			return "", cerr
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-w:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return "", fmt.Errorf("%s did not answer the typed command %q within %s: %w", guest, line, timeout, errNoAgent)
		}
	}
}

var errNoAgent = errors.New("the LAN figures beyond the prober's need loco's test guest, whose agent takes commands typed after F8 and broadcasts the reply to UDP 4245 (--param traffic=off measures the prober only)")

// field is the value of name=VALUE in an agent's reply.
func field(reply, name string) (float64, error) {
	for _, w := range strings.Fields(reply) {
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("reply %q: %s=%q is not a number", reply, name, v)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("reply %q has no %s=", reply, name)
}
