package input

import (
	"strings"
	"testing"

	"github.com/locolan/loco/sdk"
)

// keys renders key events compactly: "+shift +h -h -shift".
func keys(evs []sdk.InputEvent) string {
	var b []string
	for _, e := range evs {
		sign := "-"
		if e.Key.Down {
			sign = "+"
		}
		b = append(b, sign+e.Key.QCode)
	}
	return strings.Join(b, " ")
}

func TestText(t *testing.T) {
	cases := []struct {
		text, want string
	}{
		{"Hi", "+shift +h -h -shift +i -i"},
		{"Hello, LAN!", "+shift +h -h -shift +e -e +l -l +l -l +o -o +comma -comma +spc -spc " +
			"+shift +l -l -shift +shift +a -a -shift +shift +n -n -shift +shift +1 -1 -shift"},
		{"a\tb\n", "+a -a +tab -tab +b -b +ret -ret"},
		{"x\r\ny\rz", "+x -x +ret -ret +y -y +ret -ret +z -z"},
		{`~_+{}|:"<>?`, "+shift +grave_accent -grave_accent -shift +shift +minus -minus -shift " +
			"+shift +equal -equal -shift +shift +bracket_left -bracket_left -shift " +
			"+shift +bracket_right -bracket_right -shift +shift +backslash -backslash -shift " +
			"+shift +semicolon -semicolon -shift +shift +apostrophe -apostrophe -shift " +
			"+shift +comma -comma -shift +shift +dot -dot -shift +shift +slash -slash -shift"},
		{"09)(", "+0 -0 +9 -9 +shift +0 -0 -shift +shift +9 -9 -shift"},
		{"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			evs, err := Text(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(evs); got != tc.want {
				t.Errorf("Text(%q)\n got %s\nwant %s", tc.text, got, tc.want)
			}
			for i, e := range evs {
				if err := Validate(e); err != nil {
					t.Errorf("event %d is invalid: %v", i, err)
				}
			}
		})
	}
}

// TestTextCoversPrintableASCII: every character a US keyboard types has a
// key, so the only rejections are characters it cannot type.
func TestTextCoversPrintableASCII(t *testing.T) {
	for c := rune(0x20); c < 0x7f; c++ {
		if _, err := Text(string(c)); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
}

func TestTextRejects(t *testing.T) {
	cases := []struct {
		text string
		pos  int
		char rune
	}{
		{"café", 3, 'é'},
		{"ok\x00", 2, 0},
		{"€", 0, '€'},
		{"a\x1b", 1, 0x1b},
	}
	for _, tc := range cases {
		_, err := Text(tc.text)
		ce, ok := err.(*CharError)
		if !ok || ce.Pos != tc.pos || ce.Char != tc.char {
			t.Errorf("Text(%q) = %v, want a CharError for %q at %d", tc.text, err, tc.char, tc.pos)
			continue
		}
		if !strings.Contains(err.Error(), "US keyboard") {
			t.Errorf("message does not say why: %v", err)
		}
	}
	if _, err := Text("\xff"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestChord(t *testing.T) {
	cases := []struct {
		keys    []string
		want    string
		wantErr string
	}{
		{[]string{"ctrl", "alt", "delete"}, "+ctrl +alt +delete -delete -alt -ctrl", ""},
		{[]string{"Control", "ALT", "del"}, "+ctrl +alt +delete -delete -alt -ctrl", ""},
		{[]string{"enter"}, "+ret -ret", ""},
		{[]string{"shift", "a"}, "+shift +a -a -shift", ""},
		{nil, "", "at least one key"},
		{[]string{"ctrl", "ctrl"}, "", "twice"},
		{[]string{"ctrl", "nosuchkey"}, "", `unknown key "nosuchkey"`},
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, "", "more than the 8"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.keys, "+"), func(t *testing.T) {
			evs, err := Chord(tc.keys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(evs); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	cases := []struct {
		name, want, suggest string
	}{
		{"a", "a", ""},
		{"RET", "ret", ""},
		{"Enter", "ret", ""},
		{"pageup", "pgup", ""},
		{"f12", "f12", ""},
		{"kp_enter", "kp_enter", ""},
		{"dlete", "", "delete"},
		{"shfit", "", "shift"},
		{"f13", "", ""}, // QEMU 7.2 has no F13
		{"unmapped", "", ""},
		{"zz", "", ""},
	}
	for _, tc := range cases {
		got, err := Key(tc.name)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("Key(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
			continue
		}
		uk, ok := err.(*UnknownKeyError)
		if !ok {
			t.Errorf("Key(%q) = %q, %v; want an UnknownKeyError", tc.name, got, err)
			continue
		}
		if tc.suggest != "" && uk.Suggest != tc.suggest {
			t.Errorf("Key(%q) suggests %q, want %q", tc.name, uk.Suggest, tc.suggest)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		ev      sdk.InputEvent
		wantErr string
	}{
		{"key", sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "a", Down: true}}, ""},
		{"alias is not a qcode", sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "enter"}}, `the qcode is "ret"`},
		{"unknown key", sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "hyper"}}, `unknown key "hyper"`},
		{"empty", sdk.InputEvent{}, "sets 0"},
		{"two kinds", sdk.InputEvent{Key: &sdk.KeyEvent{QCode: "a"}, Wheel: &sdk.WheelEvent{Delta: 1}}, "sets 2"},
		{"rel", sdk.InputEvent{Rel: &sdk.RelEvent{DX: -RelMax, DY: RelMax}}, ""},
		{"rel too far", sdk.InputEvent{Rel: &sdk.RelEvent{DX: 0, DY: RelMax + 1}}, "rel.dy = 1025 is out of range -1024..1024"},
		{"abs corners", sdk.InputEvent{Abs: &sdk.AbsEvent{X: 0, Y: AbsMax}}, ""},
		{"abs negative", sdk.InputEvent{Abs: &sdk.AbsEvent{X: -1, Y: 0}}, "abs.x = -1 is out of range 0..32767"},
		{"abs too big", sdk.InputEvent{Abs: &sdk.AbsEvent{X: 1, Y: 40000}}, "abs.y = 40000"},
		{"button", sdk.InputEvent{Button: &sdk.ButtonEvent{Button: "right"}}, ""},
		{"unknown button", sdk.InputEvent{Button: &sdk.ButtonEvent{Button: "wheel-up"}}, `button "wheel-up"`},
		{"wheel", sdk.InputEvent{Wheel: &sdk.WheelEvent{Delta: -3}}, ""},
		{"wheel zero", sdk.InputEvent{Wheel: &sdk.WheelEvent{}}, "wheel.delta is 0"},
		{"wheel too far", sdk.InputEvent{Wheel: &sdk.WheelEvent{Delta: 101}}, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.ev)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestAliasesResolveToQCodes(t *testing.T) {
	for a, q := range aliases {
		if !IsQCode(q) {
			t.Errorf("alias %q names %q, which QEMU does not know", a, q)
		}
		if IsQCode(a) {
			t.Errorf("alias %q shadows a qcode", a)
		}
	}
	if len(QCodes()) != 149 {
		t.Errorf("%d qcodes; QEMU 7.2 has 149 besides \"unmapped\"", len(QCodes()))
	}
}
