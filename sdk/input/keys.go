// Package input is loco's vocabulary for keyboards and mice: the key names
// QEMU accepts (qcodes) and friendlier aliases, chords, the US keymap that
// turns text into key presses, and the ranges pointer events must stay in.
// The API checks every event with it before a plugin sees it, and the
// input-qmp plugin checks again, because a plugin can be driven by other
// hosts too.
package input

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// qcodes is QEMU's QKeyCode enumeration as QEMU 7.2 reports it in
// query-qmp-schema, minus "unmapped" (which sends nothing). A name outside
// this list makes QEMU reject the whole input-send-event command.
var qcodes = strings.Fields(`
shift shift_r alt alt_r ctrl ctrl_r menu esc 1 2 3 4 5 6 7 8 9 0 minus equal
backspace tab q w e r t y u i o p bracket_left bracket_right ret a s d f g h j
k l semicolon apostrophe grave_accent backslash z x c v b n m comma dot slash
asterisk spc caps_lock f1 f2 f3 f4 f5 f6 f7 f8 f9 f10 num_lock scroll_lock
kp_divide kp_multiply kp_subtract kp_add kp_enter kp_decimal sysrq kp_0 kp_1
kp_2 kp_3 kp_4 kp_5 kp_6 kp_7 kp_8 kp_9 less f11 f12 print home pgup pgdn end
left up down right insert delete stop again props undo front copy open paste
find cut lf help meta_l meta_r compose pause ro hiragana henkan yen muhenkan
katakanahiragana kp_comma kp_equals power sleep wake audionext audioprev
audiostop audioplay audiomute volumeup volumedown mediaselect mail calculator
computer ac_home ac_back ac_forward ac_refresh ac_bookmarks lang1 lang2`)

var qcodeSet = func() map[string]bool {
	m := make(map[string]bool, len(qcodes))
	for _, q := range qcodes {
		m[q] = true
	}
	return m
}()

// aliases are the names people and AI agents reach for first. Each maps to
// a qcode; the qcodes themselves are always accepted too.
var aliases = map[string]string{
	"enter": "ret", "return": "ret", "space": "spc", "escape": "esc",
	"del": "delete", "ins": "insert", "bksp": "backspace",
	"control": "ctrl", "lctrl": "ctrl", "rctrl": "ctrl_r",
	"lshift": "shift", "rshift": "shift_r", "lalt": "alt", "ralt": "alt_r", "altgr": "alt_r",
	"win": "meta_l", "super": "meta_l", "meta": "meta_l", "cmd": "meta_l",
	"pageup": "pgup", "pagedown": "pgdn", "page_up": "pgup", "page_down": "pgdn",
	"capslock": "caps_lock", "numlock": "num_lock", "scrolllock": "scroll_lock",
	"printscreen": "print", "prtsc": "print",
	"arrowleft": "left", "arrowright": "right", "arrowup": "up", "arrowdown": "down",
	"period": "dot", "quote": "apostrophe", "backquote": "grave_accent", "grave": "grave_accent",
	"-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right", ";": "semicolon",
	"'": "apostrophe", "`": "grave_accent", "\\": "backslash", ",": "comma", ".": "dot", "/": "slash",
}

// IsQCode reports whether name is a key QEMU knows, exactly as QEMU spells it.
func IsQCode(name string) bool { return qcodeSet[name] }

// QCodes lists every key name QEMU accepts, sorted.
func QCodes() []string {
	out := slices.Clone(qcodes)
	sort.Strings(out)
	return out
}

// UnknownKeyError names a key that is neither a qcode nor an alias.
type UnknownKeyError struct {
	Name    string
	Suggest string // the closest known name, if one is close
}

func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("unknown key %q", e.Name)
	if e.Suggest != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggest)
	}
	return msg + ": use a QEMU qcode such as \"a\", \"ret\", \"shift\", \"ctrl\", \"alt\", \"delete\", \"f1\" (docs/api.md lists them)"
}

// Key resolves a key name, a qcode or an alias, case-insensitively, to its
// qcode.
func Key(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if qcodeSet[n] {
		return n, nil
	}
	if q, ok := aliases[n]; ok {
		return q, nil
	}
	return "", &UnknownKeyError{Name: name, Suggest: closest(n)}
}

// closest finds the known name nearest to n by edit distance, if it is
// near enough to be a typo rather than a different idea.
func closest(n string) string {
	best, bestD := "", 3
	consider := func(c string) {
		if d := editDistance(n, c); d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	for _, q := range qcodes {
		consider(q)
	}
	for a := range aliases {
		if len(a) > 1 {
			consider(a)
		}
	}
	if len(n) <= 2 && bestD > 0 {
		return "" // everything is two edits from a one-letter name
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
