//go:build linux

package main

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Typed commands: the control protocol from the keyboard, for programs
// that reach a guest only through loco's API (the bench plugin's lan
// scenario). F8 opens a command line, the text typed after it on a US
// keyboard is the command, Enter runs it (Escape drops it). Keys outside
// such a line are left alone, so other tests' typing never runs anything.
// The reply cannot go back the way the command came, so it goes out on the
// LAN, where the API's capture sees it: a UDP broadcast to replyPort,
//
//	LOCO-REPLY NAME SEQ\tCOMMAND LINE\tOK ...
//
// sent twice (a lost datagram would otherwise cost a command); SEQ tells
// the copies apart from a second run of the same command.
const (
	keyF8        = 66
	keyEsc       = 1
	keyEnter     = 28
	keyKPEnter   = 96
	keyBackspace = 14
	keyLShift    = 42
	keyRShift    = 54

	replyPort   = 4245
	replyPrefix = "LOCO-REPLY "
	maxReply    = 1400 // one frame on a 1500-byte LAN
)

// usKeys are the characters of the keys by code, unshifted and shifted.
var usKeys = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'}, 7: {'6', '^'},
	8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'}, 12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'}, 21: {'y', 'Y'},
	22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'}, 26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'}, 35: {'h', 'H'},
	36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'}, 39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'},
	43: {'\\', '|'}, 44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'}, 51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
}

type keyCommands struct {
	mu     sync.Mutex
	active bool // after F8, until Enter or Escape
	shift  int  // shift keys held
	line   []byte
	seq    int
	run    chan string
	a      *agent
	out    printer
	reply  func(payload []byte) error
}

func newKeyCommands(a *agent, out printer) *keyCommands {
	k := &keyCommands{a: a, out: out, run: make(chan string, 16)}
	k.reply = k.broadcast
	return k
}

// start runs typed commands one after another, in the order typed: a
// burst must finish before the count that follows it is read.
func (k *keyCommands) start() {
	go func() {
		for line := range k.run {
			k.exec(line)
		}
	}()
}

// event sees every key event: value 1 press, 0 release, 2 repeat.
func (k *keyCommands) event(code uint16, value int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if code == keyLShift || code == keyRShift {
		if value == 1 {
			k.shift++
		} else if value == 0 && k.shift > 0 {
			k.shift--
		}
		return
	}
	if value != 1 {
		return
	}
	switch {
	case code == keyF8:
		k.active, k.line = true, k.line[:0]
	case !k.active:
	case code == keyEsc:
		k.active = false
	case code == keyEnter || code == keyKPEnter:
		k.active = false
		select {
		case k.run <- string(k.line):
		default:
			k.out.Printf("LOCO-ERROR typed command dropped: %d commands are waiting", cap(k.run))
		}
	case code == keyBackspace:
		if len(k.line) > 0 {
			k.line = k.line[:len(k.line)-1]
		}
	default:
		if c, ok := usKeys[code]; ok && len(k.line) < maxLineLen {
			k.line = append(k.line, c[min(k.shift, 1)])
		}
	}
}

func (k *keyCommands) exec(line string) {
	reply := "ERR empty command"
	if strings.TrimSpace(line) != "" {
		reply = k.a.dispatch(line)
	}
	k.mu.Lock()
	k.seq++
	seq := k.seq
	k.mu.Unlock()
	name, _ := k.a.env.hostname()
	payload := fmt.Sprintf("%s%s %d\t%s\t%s", replyPrefix, name, seq, line, reply)
	if len(payload) > maxReply {
		payload = payload[:maxReply]
	}
	k.out.Printf("LOCO-KEYCMD %d %s -> %s", seq, line, reply)
	for i := range 2 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if err := k.reply([]byte(payload)); err != nil {
			k.out.Printf("LOCO-ERROR typed command %d: sending the reply: %v", seq, err)
			return
		}
	}
}

// broadcast sends a reply to 255.255.255.255: it reaches the LAN whatever
// the guest's address and routes.
func (k *keyCommands) broadcast(payload []byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("udp socket: %w", err)
	}
	defer syscall.Close(fd)
	if err := k.a.ifaceControl(uintptr(fd)); err != nil {
		return err
	}
	return syscall.Sendto(fd, payload, 0, &syscall.SockaddrInet4{Port: replyPort, Addr: [4]byte{255, 255, 255, 255}})
}
