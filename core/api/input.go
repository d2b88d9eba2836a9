package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/input"
)

// Limits on one request. A batch is counted after chords and text are
// expanded into key events; at the input plugin's default pace (5 ms an
// event) the largest batch takes under a minute.
const (
	MaxBatch     = 5000
	MaxTextChars = 2000
	maxBody      = 1 << 20
)

// InputResult answers a delivered batch.
type InputResult struct {
	Instance string `json:"instance"`
	Events   int    `json:"events"` // key, pointer and wheel events delivered
}

func (s *Server) postInput(w http.ResponseWriter, r *http.Request) {
	g, ok := s.guestFor(w, r)
	if !ok {
		return
	}
	body, ok := readInputBody(w, r)
	if !ok {
		return
	}
	events, err := DecodeInput(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if code, msg := s.deliverInput(r.Context(), g.Index, events); code != http.StatusOK {
		writeError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, InputResult{Instance: g.Name, Events: len(events)})
}

// TypeResult answers typed text.
type TypeResult struct {
	Instance   string `json:"instance"`
	Characters int    `json:"characters"`
	Events     int    `json:"events"`
}

func (s *Server) postType(w http.ResponseWriter, r *http.Request) {
	g, ok := s.guestFor(w, r)
	if !ok {
		return
	}
	body, ok := readInputBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Text *string `json:"text"`
	}
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error()+`; send {"text": "..."}`)
		return
	}
	if req.Text == nil || *req.Text == "" {
		writeError(w, http.StatusBadRequest, `body: "text" is missing or empty; send {"text": "..."}`)
		return
	}
	events, err := textEvents(*req.Text)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if code, msg := s.deliverInput(r.Context(), g.Index, events); code != http.StatusOK {
		writeError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, TypeResult{Instance: g.Name, Characters: len([]rune(*req.Text)), Events: len(events)})
}

func (s *Server) getScreenshot(w http.ResponseWriter, r *http.Request) {
	g, ok := s.guestFor(w, r)
	if !ok {
		return
	}
	// A paused guest still has a screen; a stopped one has no QEMU to ask.
	if g.State != supervise.Running {
		writeError(w, http.StatusConflict, notRunning(g))
		return
	}
	p := s.b.Input()
	if p == nil {
		writeError(w, http.StatusNotFound, noInputPlugin)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	shot, err := p.Screenshot(ctx, uint32(g.Index))
	if err != nil {
		writePluginError(w, r, "input", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(HeaderWidth, strconv.Itoa(shot.Width))
	w.Header().Set(HeaderHeight, strconv.Itoa(shot.Height))
	w.Header().Set("Content-Length", strconv.Itoa(len(shot.PNG)))
	w.WriteHeader(http.StatusOK)
	w.Write(shot.PNG)
}

// WSError is what the WebSocket sends back for a message it could not
// deliver; Seq counts the client's messages from 1.
type WSError struct {
	Seq    int    `json:"seq"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

// inputWS streams input: every text message is one event object or an
// array of them, delivered in order before the next message is read, so a
// fast client is slowed down (TCP backpressure) rather than losing events.
// A message that cannot be delivered gets a WSError back and the stream
// goes on: a browser should not lose its connection over one bad key.
func (s *Server) inputWS(w http.ResponseWriter, r *http.Request) {
	g, ok := s.guestFor(w, r)
	if !ok {
		return
	}
	if s.b.Input() == nil {
		writeError(w, http.StatusNotFound, noInputPlugin)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeError(w, http.StatusUpgradeRequired, "this endpoint speaks WebSocket: connect with a WebSocket client (token in ?token= for browsers)")
		return
	}
	// Same-origin only: a page from elsewhere must not type into guests
	// through a browser that happens to hold the token.
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not open this WebSocket: only pages served by this API may", shorten(o)))
			return
		}
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Warn("input WebSocket: accept failed", "err", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(maxBody)
	ctx := r.Context() // ends when this handler returns, which ends the reader
	in := make(chan wsMessage, 32)
	go readWS(ctx, c, in, func(err error) { s.log.Debug("input WebSocket ended", "guest", g.Name, "err", err) })
	var next *wsMessage
	for {
		var m wsMessage
		if next != nil {
			m, next = *next, nil
		} else if mm, ok := <-in; ok {
			m = mm
		} else {
			return
		}
		// Motion queued behind motion is merged into one event: a pointer
		// that lags behind the hand is worse than one that skips the
		// positions in between. Keys and buttons are never merged.
	merge:
		for m.code == 0 {
			select {
			case mm, ok := <-in:
				if !ok {
					break merge
				}
				if merged, ok := mergeMotion(m.events, mm.events); ok && mm.code == 0 {
					m.events, m.seq = merged, mm.seq
					continue
				}
				next = &mm
				break merge
			default:
				break merge
			}
		}
		if m.code == 0 {
			m.code, m.err = s.deliverInput(ctx, g.Index, m.events)
		}
		if m.code == http.StatusOK {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = wsjson.Write(wctx, c, WSError{Seq: m.seq, Status: m.code, Error: m.err})
		cancel()
		if err != nil {
			return // a client that does not read its errors is gone
		}
	}
}

// wsMessage is one decoded WebSocket message, or why it could not be
// decoded (code 400).
type wsMessage struct {
	seq    int
	events []sdk.InputEvent
	code   int
	err    string
}

// readWS decodes messages into in until the connection ends. The channel
// is small, so a client that sends faster than the guest takes input is
// held back by TCP rather than buffered here without bound.
func readWS(ctx context.Context, c *websocket.Conn, in chan<- wsMessage, ended func(error)) {
	defer close(in)
	for seq := 1; ; seq++ {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure && st != websocket.StatusGoingAway && ctx.Err() == nil {
				ended(err)
			}
			return
		}
		m := wsMessage{seq: seq}
		if typ != websocket.MessageText {
			m.code, m.err = http.StatusBadRequest, "send JSON in text messages, not binary ones"
		} else if m.events, err = DecodeMessage(msg); err != nil {
			m.code, m.err = http.StatusBadRequest, err.Error()
		}
		select {
		case in <- m:
		case <-ctx.Done():
			return
		}
	}
}

// mergeMotion merges two single-motion batches of the same kind: relative
// motions add up (within input.RelMax), an absolute position replaces the
// one before it.
func mergeMotion(a, b []sdk.InputEvent) ([]sdk.InputEvent, bool) {
	if len(a) != 1 || len(b) != 1 {
		return nil, false
	}
	x, y := a[0], b[0]
	switch {
	case x.Rel != nil && y.Rel != nil:
		dx, dy := x.Rel.DX+y.Rel.DX, x.Rel.DY+y.Rel.DY
		if dx < -input.RelMax || dx > input.RelMax || dy < -input.RelMax || dy > input.RelMax {
			return nil, false
		}
		return []sdk.InputEvent{{Rel: &sdk.RelEvent{DX: dx, DY: dy}}}, true
	case x.Abs != nil && y.Abs != nil:
		return b, true
	}
	return nil, false
}

// addresses are the guests' IP addresses as the network plugin last saw
// them, by index: none without a network plugin, or when it does not answer
// quickly (the instance list must not wait on it).
func (s *Server) addresses(ctx context.Context) map[int][]string {
	p := s.b.Network()
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	st, err := p.LANStatus(ctx)
	if err != nil {
		s.log.Debug("instances without addresses: the network plugin did not answer", "err", err)
		return nil
	}
	out := map[int][]string{}
	for _, port := range st.Ports {
		out[int(port.Instance)] = port.IPs
	}
	return out
}

const noInputPlugin = `this cluster has no input plugin: add input "qmp" {} to the cluster block`

const noNetworkPlugin = "this cluster has no network plugin"

// guestFor resolves {id} (see instance) to the guest's status, or answers
// 404.
func (s *Server) guestFor(w http.ResponseWriter, r *http.Request) (supervise.GuestStatus, bool) {
	i, err := s.instance(r.PathValue("id"))
	if err == nil {
		for _, g := range s.b.Guests() {
			if g.Index == i {
				return g, true
			}
		}
		err = fmt.Errorf("instance %d is not supervised yet", i)
	}
	writeError(w, http.StatusNotFound, err.Error())
	return supervise.GuestStatus{}, false
}

// deliverInput sends events to guest index through the input plugin and says
// how it went as an HTTP status and message.
func (s *Server) deliverInput(ctx context.Context, index int, events []sdk.InputEvent) (int, string) {
	// Asked afresh for every batch: a WebSocket outlives guest restarts.
	for _, g := range s.b.Guests() {
		if g.Index == index && g.State != supervise.Running {
			return http.StatusConflict, notRunning(g)
		}
	}
	p := s.b.Input()
	if p == nil {
		return http.StatusNotFound, noInputPlugin
	}
	// Generous: the plugin paces events, and a client that gives up
	// cancels through r.Context() anyway.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second+time.Duration(len(events))*20*time.Millisecond)
	defer cancel()
	if err := p.Send(ctx, uint32(index), events); err != nil {
		return pluginError(ctx, "input", err)
	}
	return http.StatusOK, ""
}

func notRunning(g supervise.GuestStatus) string {
	msg := fmt.Sprintf("guest %s is %s, not running", g.Name, g.State)
	if g.LastExit != "" {
		msg += " (last exit: " + g.LastExit + ")"
	}
	return msg
}

func readInputBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxBody))
		} else {
			writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// DecodeInput reads the body of POST /input: {"events": [EVENT, ...]}.
// Every problem is reported with the index of the event it is in.
func DecodeInput(body []byte) ([]sdk.InputEvent, error) {
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return nil, fmt.Errorf(`body: %v; send {"events": [...]}`, err)
	}
	if req.Events == nil {
		return nil, errors.New(`body: "events" is missing; send {"events": [...]}`)
	}
	return decodeEvents(req.Events)
}

// DecodeMessage reads one WebSocket message: an event object, or an array
// of them.
func DecodeMessage(msg []byte) ([]sdk.InputEvent, error) {
	trimmed := bytes.TrimLeft(msg, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := decodeStrict(msg, &raws); err != nil {
			return nil, fmt.Errorf("message: %v", err)
		}
		return decodeEvents(raws)
	}
	return decodeEvents([]json.RawMessage{msg})
}

func decodeEvents(raws []json.RawMessage) ([]sdk.InputEvent, error) {
	if len(raws) == 0 {
		return nil, errors.New("no events: send at least one")
	}
	var out []sdk.InputEvent
	for i, raw := range raws {
		evs, err := decodeEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		out = append(out, evs...)
		if len(out) > MaxBatch {
			return nil, fmt.Errorf("event %d: the batch expands to more than %d key and pointer events; split it", i, MaxBatch)
		}
	}
	return out, nil
}

// apiEvent is one event as clients write it: a device event of
// sdk.InputEvent, or a chord or text, which expand into key events. The
// fields are pointers so a missing field is told from a zero.
type apiEvent struct {
	// Key is {"qcode": "a", "down": true}, or a key's name alone ("f10"),
	// which is a press and a release.
	Key json.RawMessage `json:"key"`
	Rel *struct {
		DX *json.Number `json:"dx"`
		DY *json.Number `json:"dy"`
	} `json:"rel"`
	Abs *struct {
		X *json.Number `json:"x"`
		Y *json.Number `json:"y"`
	} `json:"abs"`
	Button *struct {
		Button *string `json:"button"`
		Down   *bool   `json:"down"`
	} `json:"button"`
	Wheel *struct {
		Delta *json.Number `json:"delta"`
	} `json:"wheel"`
	Chord []string `json:"chord"`
	Text  *string  `json:"text"`
}

func decodeEvent(raw json.RawMessage) ([]sdk.InputEvent, error) {
	var e apiEvent
	if err := decodeStrict(raw, &e); err != nil {
		return nil, err
	}
	var set []string
	for name, ok := range map[string]bool{"key": e.Key != nil, "rel": e.Rel != nil, "abs": e.Abs != nil,
		"button": e.Button != nil, "wheel": e.Wheel != nil, "chord": e.Chord != nil, "text": e.Text != nil} {
		if ok {
			set = append(set, name)
		}
	}
	if len(set) != 1 {
		has := "none"
		if len(set) > 0 {
			slices.Sort(set)
			has = strings.Join(set, " and ")
		}
		return nil, fmt.Errorf("an event has exactly one of key, rel, abs, button, wheel, chord, text; this one has %s", has)
	}
	var ev sdk.InputEvent
	switch {
	case e.Key != nil:
		var name string
		if json.Unmarshal(e.Key, &name) == nil {
			return input.Chord([]string{name})
		}
		var k struct {
			QCode *string `json:"qcode"`
			Down  *bool   `json:"down"`
		}
		if err := decodeStrict(e.Key, &k); err != nil {
			return nil, fmt.Errorf(`key.%v; write "key": "f10" (press and release) or {"qcode": "f10", "down": true}`, err)
		}
		if k.QCode == nil || k.Down == nil {
			return nil, errors.New(`key needs "qcode" and "down" (true presses, false releases), or is a name alone ("f10": a press and a release)`)
		}
		q, err := input.Key(*k.QCode)
		if err != nil {
			return nil, err
		}
		ev.Key = &sdk.KeyEvent{QCode: q, Down: *k.Down}
	case e.Rel != nil:
		dx, dy, err := axes("rel.dx", e.Rel.DX, "rel.dy", e.Rel.DY, false)
		if err != nil {
			return nil, err
		}
		ev.Rel = &sdk.RelEvent{DX: dx, DY: dy}
	case e.Abs != nil:
		x, y, err := axes("abs.x", e.Abs.X, "abs.y", e.Abs.Y, true)
		if err != nil {
			return nil, err
		}
		ev.Abs = &sdk.AbsEvent{X: x, Y: y}
	case e.Button != nil:
		if e.Button.Button == nil || e.Button.Down == nil {
			return nil, errors.New(`button needs "button" ("left", "middle", "right") and "down"`)
		}
		ev.Button = &sdk.ButtonEvent{Button: *e.Button.Button, Down: *e.Button.Down}
	case e.Wheel != nil:
		d, err := number("wheel.delta", e.Wheel.Delta, true)
		if err != nil {
			return nil, err
		}
		ev.Wheel = &sdk.WheelEvent{Delta: d}
	case e.Chord != nil:
		return input.Chord(e.Chord)
	case e.Text != nil:
		return textEvents(*e.Text)
	}
	if err := input.Validate(ev); err != nil {
		return nil, err
	}
	return []sdk.InputEvent{ev}, nil
}

// axes reads the two coordinates of a motion event.
func axes(nameA string, a *json.Number, nameB string, b *json.Number, required bool) (int32, int32, error) {
	x, err := number(nameA, a, required)
	if err != nil {
		return 0, 0, err
	}
	y, err := number(nameB, b, required)
	return x, y, err
}

func textEvents(text string) ([]sdk.InputEvent, error) {
	if n := len([]rune(text)); n > MaxTextChars {
		return nil, fmt.Errorf("text has %d characters; send at most %d at a time", n, MaxTextChars)
	}
	if text == "" {
		return nil, errors.New("text is empty")
	}
	return input.Text(text)
}

// number reads a whole number that fits int32 (the range check proper is
// input.Validate's); a missing one is 0 unless required.
func number(field string, n *json.Number, required bool) (int32, error) {
	if n == nil {
		if required {
			return 0, fmt.Errorf("%s is missing", field)
		}
		return 0, nil
	}
	v, err := strconv.ParseInt(n.String(), 10, 32)
	if err != nil {
		if f, ferr := n.Float64(); ferr == nil && f == float64(int64(f)) && f >= -1<<31 && f < 1<<31 {
			return int32(f), nil // 3.0 or 1e2
		}
		return 0, fmt.Errorf("%s = %s is not a whole number in range", field, n.String())
	}
	return int32(v), nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty, expected JSON")
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonError says what was wrong in the client's terms: JSON types and
// field paths, not Go types.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		where := te.Field
		if where == "" {
			where = "the value"
		}
		return fmt.Errorf("%s: got a JSON %s, want %s", where, te.Value, jsonKind(te.Type))
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: it ends too early")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.Number]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.Kind().String()
}
