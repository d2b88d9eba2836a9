package input

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/locolan/loco/sdk"
)

// Ranges of pointer events. Absolute positions are QEMU's: 0..AbsMax on each
// axis spans the whole screen whatever its resolution. Relative motion is
// bounded because PS/2 carries at most 127 per packet and a guest's queue
// holds only a few packets: a larger jump is a client bug, not a gesture.
const (
	AbsMax   = 32767
	RelMax   = 1024
	WheelMax = 100
	// MaxChord is the most keys one chord holds down at once.
	MaxChord = 8
)

// Buttons are the mouse buttons an event may name.
var Buttons = []string{"left", "middle", "right"}

// Validate checks one event the way QEMU and the guest would take it: a
// single kind set, a qcode QEMU knows, coordinates in range.
func Validate(e sdk.InputEvent) error {
	n := 0
	for _, set := range []bool{e.Key != nil, e.Rel != nil, e.Abs != nil, e.Button != nil, e.Wheel != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("an event sets exactly one of key, rel, abs, button, wheel; this one sets %d", n)
	}
	switch {
	case e.Key != nil:
		if !IsQCode(e.Key.QCode) {
			if q, err := Key(e.Key.QCode); err == nil {
				return fmt.Errorf("key %q: the qcode is %q", e.Key.QCode, q)
			}
			return &UnknownKeyError{Name: e.Key.QCode, Suggest: closest(e.Key.QCode)}
		}
	case e.Rel != nil:
		if err := inRange("rel.dx", e.Rel.DX, -RelMax, RelMax); err != nil {
			return err
		}
		return inRange("rel.dy", e.Rel.DY, -RelMax, RelMax)
	case e.Abs != nil:
		if err := inRange("abs.x", e.Abs.X, 0, AbsMax); err != nil {
			return err
		}
		return inRange("abs.y", e.Abs.Y, 0, AbsMax)
	case e.Button != nil:
		for _, b := range Buttons {
			if e.Button.Button == b {
				return nil
			}
		}
		return fmt.Errorf("button %q: use one of %q", e.Button.Button, Buttons)
	case e.Wheel != nil:
		if e.Wheel.Delta == 0 {
			return errors.New("wheel.delta is 0: give the notches to scroll, positive up, negative down")
		}
		return inRange("wheel.delta", e.Wheel.Delta, -WheelMax, WheelMax)
	}
	return nil
}

func inRange(field string, v, lo, hi int32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s = %d is out of range %d..%d", field, v, lo, hi)
	}
	return nil
}

// Chord presses keys in order and releases them in reverse, the way a
// person does ctrl-alt-delete. One key is a plain press and release.
func Chord(names []string) ([]sdk.InputEvent, error) {
	if len(names) == 0 {
		return nil, errors.New("a chord needs at least one key")
	}
	if len(names) > MaxChord {
		return nil, fmt.Errorf("a chord of %d keys is more than the %d loco holds down at once", len(names), MaxChord)
	}
	codes := make([]string, len(names))
	for i, n := range names {
		q, err := Key(n)
		if err != nil {
			return nil, err
		}
		for _, prev := range codes[:i] {
			if prev == q {
				return nil, fmt.Errorf("key %q appears twice in the chord", n)
			}
		}
		codes[i] = q
	}
	out := make([]sdk.InputEvent, 0, 2*len(codes))
	for _, q := range codes {
		out = append(out, keyEvent(q, true))
	}
	for i := len(codes) - 1; i >= 0; i-- {
		out = append(out, keyEvent(codes[i], false))
	}
	return out, nil
}

func keyEvent(q string, down bool) sdk.InputEvent {
	return sdk.InputEvent{Key: &sdk.KeyEvent{QCode: q, Down: down}}
}

// usKey is where a character sits on a US keyboard.
type usKey struct {
	qcode string
	shift bool
}

// usLayout maps the printable ASCII characters, and the whitespace a
// keyboard can type, to keys of the US layout.
var usLayout = func() map[rune]usKey {
	m := map[rune]usKey{' ': {"spc", false}, '\n': {"ret", false}, '\t': {"tab", false}}
	for c := 'a'; c <= 'z'; c++ {
		m[c] = usKey{string(c), false}
		m[c-'a'+'A'] = usKey{string(c), true}
	}
	for c := '0'; c <= '9'; c++ {
		m[c] = usKey{string(c), false}
	}
	for i, c := range ")!@#$%^&*(" { // shift + 0..9
		m[c] = usKey{string(rune('0' + i)), true}
	}
	for _, k := range []struct {
		plain, shifted rune
		qcode          string
	}{
		{'-', '_', "minus"}, {'=', '+', "equal"}, {'[', '{', "bracket_left"}, {']', '}', "bracket_right"},
		{'\\', '|', "backslash"}, {';', ':', "semicolon"}, {'\'', '"', "apostrophe"}, {'`', '~', "grave_accent"},
		{',', '<', "comma"}, {'.', '>', "dot"}, {'/', '?', "slash"},
	} {
		m[k.plain] = usKey{k.qcode, false}
		m[k.shifted] = usKey{k.qcode, true}
	}
	return m
}()

// CharError is a character the US keymap cannot type.
type CharError struct {
	Char rune
	Pos  int // in characters, from 0
}

func (e *CharError) Error() string {
	return fmt.Sprintf("character %q (U+%04X) at position %d has no key on a US keyboard: "+
		"text may hold printable ASCII, space, tab and newline", e.Char, e.Char, e.Pos)
}

// Text turns text into the key presses that type it on a US keyboard:
// shifted characters are wrapped in shift down and up. "\r\n" types one
// Enter. A character the keymap lacks fails the whole text, before anything
// is typed.
func Text(s string) ([]sdk.InputEvent, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("text is not valid UTF-8")
	}
	var out []sdk.InputEvent
	runes := []rune(s)
	for i, c := range runes {
		if c == '\r' {
			if i+1 < len(runes) && runes[i+1] == '\n' {
				continue
			}
			c = '\n'
		}
		k, ok := usLayout[c]
		if !ok {
			return nil, &CharError{Char: c, Pos: i}
		}
		if k.shift {
			out = append(out, keyEvent("shift", true))
		}
		out = append(out, keyEvent(k.qcode, true), keyEvent(k.qcode, false))
		if k.shift {
			out = append(out, keyEvent("shift", false))
		}
	}
	return out, nil
}
