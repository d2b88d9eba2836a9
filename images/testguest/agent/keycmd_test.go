//go:build linux

package main

import (
	"strings"
	"testing"
	"time"
)

// press is a key's press and release, with Shift around it when shifted.
func press(code uint16, shifted bool) [][2]int32 {
	ev := [][2]int32{{int32(code), 1}, {int32(code), 0}}
	if shifted {
		ev = append([][2]int32{{keyLShift, 1}}, append(ev, [2]int32{keyLShift, 0})...)
	}
	return ev
}

// typeText is what POST /type sends for text on a US keyboard.
func typeText(t *testing.T, s string) [][2]int32 {
	var ev [][2]int32
	for _, r := range s {
		if r == '\n' {
			ev = append(ev, press(keyEnter, false)...)
			continue
		}
		found := false
		for code, c := range usKeys {
			if c[0] == byte(r) || c[1] == byte(r) {
				ev = append(ev, press(code, c[0] != byte(r))...)
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("no key for %q", r)
		}
	}
	return ev
}

// TestKeyCommands feeds key events to the typed-command decoder and reads
// the replies it would broadcast (the broadcast itself is replaced here;
// the bench plugin's lan scenario receives real ones from booted guests).
func TestKeyCommands(t *testing.T) {
	f8 := press(keyF8, false)
	cat := func(parts ...[][2]int32) [][2]int32 {
		var all [][2]int32
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	cases := []struct {
		name string
		keys [][2]int32
		want []string // replies after "LOCO-REPLY pc1 SEQ\t"
	}{
		{"a command", cat(f8, typeText(t, "echo hi there\n")), []string{"echo hi there\tOK hi there"}},
		{"shifted characters", cat(f8, typeText(t, "echo Ab:C_d\n")), []string{"echo Ab:C_d\tOK Ab:C_d"}},
		{"typing without F8 runs nothing", typeText(t, "echo no\n"), nil},
		{"backspace", cat(f8, typeText(t, "echo abx"), press(keyBackspace, false), typeText(t, "c\n")), []string{"echo abc\tOK abc"}},
		{"escape drops the line", cat(f8, typeText(t, "echo gone"), press(keyEsc, false), typeText(t, "echo x\n")), nil},
		{"F8 starts afresh", cat(f8, typeText(t, "junk"), f8, typeText(t, "ping\n")), []string{"ping\tOK pong"}},
		{"an empty line", cat(f8, typeText(t, "\n")), []string{"\tERR empty command"}},
		{"an unknown command", cat(f8, typeText(t, "warp 9\n")), []string{"warp 9\tERR unknown command \"warp\""}},
		{"two in order", cat(f8, typeText(t, "echo 1\n"), f8, typeText(t, "echo 2\n")), []string{"echo 1\tOK 1", "echo 2\tOK 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := testEnv(t)
			k := newKeyCommands(newAgent(e), &lines{})
			got := make(chan string, 16)
			k.reply = func(p []byte) error { got <- string(p); return nil }
			k.start()
			for _, ev := range tc.keys {
				k.event(uint16(ev[0]), ev[1])
			}
			for i, w := range tc.want {
				for copy := range 2 { // every reply is sent twice
					select {
					case p := <-got:
						head := replyPrefix + "pc1 " + string(rune('1'+i)) + "\t"
						if !strings.HasPrefix(p, head) || strings.TrimPrefix(p, head) != w {
							t.Errorf("reply %d copy %d = %q, want %q%s", i+1, copy+1, p, head, w)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("no reply %d (%q)", i+1, w)
					}
				}
			}
			select {
			case p := <-got:
				t.Errorf("unexpected reply %q", p)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}
