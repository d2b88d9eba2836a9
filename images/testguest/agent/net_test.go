//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestNetCommandUsageErrors(t *testing.T) {
	e, _ := testEnv(t)
	a := newAgent(e)
	cases := []struct{ line, want string }{
		{"raw-send", "ERR usage: raw-send TYPE DST TEXT [COUNT]"},
		{"raw-send 0x0100 broadcast x", `ERR type "0x0100": an EtherType above 0x05dc, 802.3 or llc:SAP`},
		{"raw-send llc:zz broadcast x", `ERR type "llc:zz": llc:SAP with SAP in hex`},
		{"raw-send 0x8137 nomac x", `ERR destination "nomac": a MAC or broadcast`},
		{"raw-send 0x8137 broadcast x 0", `ERR count "0": 1-10000`},
		{"raw-recv 0x8137", "ERR not listening: send raw-listen first"},
		{"raw-stats", "ERR not listening: send raw-listen first"},
		{"udp-listen 0", `ERR port "0": 1-65535`},
		{"udp-send 10.0.0.1 2300", "ERR usage: udp-send ADDR PORT TEXT [COUNT [SIZE]]"},
		{"udp-send 10.0.0.1 2300 abc 1 2", `ERR size "2": 3-1472 bytes (the text, up to one Ethernet frame)`},
		{"udp-send ::1 2300 x", `ERR address "::1": IPv4`},
		{"udp-recv 2300", "ERR not listening on udp 2300: send udp-listen 2300 first"},
		{"tcp-connect 10.0.0.1 2300", "ERR usage: tcp-connect ADDR PORT TEXT"},
		{"icmp-ping", "ERR usage: icmp-ping ADDR [COUNT [TIMEOUT_MS]]"},
		{"icmp-ping 10.0.0.1 1 0", `ERR timeout "0": 1-60000 ms`},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			if got := a.dispatch(tc.line); got != tc.want {
				t.Errorf("%q -> %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestParsers(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 2 64\nIcmp: InMsgs InErrors InEchos OutEchoReps\nIcmp: 12 0 5 4\nIcmpMsg: InType0\nIcmpMsg: 3\n"
	vals, err := snmpCounters(snmp, "Icmp")
	if err != nil || vals["InEchos"] != "5" || vals["OutEchoReps"] != "4" {
		t.Errorf("snmpCounters: %v %v", vals, err)
	}
	if _, err := snmpCounters(snmp, "Udp"); err == nil {
		t.Error("missing protocol not reported")
	}
	req := echoRequest(0x1234, 7)
	if checksum(req) != 0 {
		t.Errorf("echo request checksum does not verify")
	}
	ip := []byte{0x45, 0, 0, 48, 0, 0, 0, 0, 64, 1, 0, 0, 10, 87, 0, 11, 10, 87, 0, 10}
	reply := append(append([]byte{}, ip...), 0, 0, 0, 0, 0x12, 0x34, 0, 7)
	if src, id, seq, ok := parseEchoReply(reply); !ok || src != "10.87.0.11" || id != 0x1234 || seq != 7 {
		t.Errorf("parseEchoReply = %s %x %d %v", src, id, seq, ok)
	}
	if _, _, _, ok := parseEchoReply(append(append([]byte{}, ip...), 8, 0, 0, 0, 0, 0, 0, 0)); ok {
		t.Error("an echo request parsed as a reply")
	}
	for et, want := range map[uint16]string{0x8137: "0x8137", 46: "802.3", 1500: "802.3", 0x0800: "0x0800"} {
		if got := frameKey(et); got != want {
			t.Errorf("frameKey(%#x) = %s, want %s", et, got, want)
		}
	}
	echo := append([]byte("\xff\xff\xff\xff\xff\xff\x52\x00\x00\x00\x00\x01\x08\x00"), ip...)
	echo = append(echo, 8, 0, 0, 0, 0, 1, 0, 1)
	if !isBroadcastEcho(echo) {
		t.Error("a broadcast echo request was not recognised")
	}
	echo[0] = 0x52
	if isBroadcastEcho(echo) {
		t.Error("a unicast echo request counted as broadcast")
	}
	if got := printable([]byte("\xff\xffipx hello\x00\x00")); got != "ipxhello" {
		t.Errorf("printable = %q", got)
	}
}

// TestNetCommandsOnLoopback runs the UDP, TCP and ping commands for real,
// on the host's loopback interface (they need root, as the agent has in
// the guest).
func TestNetCommandsOnLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw sockets and SO_BINDTODEVICE need root")
	}
	e, _ := testEnv(t)
	e.iface = "lo"
	a := newAgent(e)
	steps := []struct{ line, wantPrefix string }{
		{"udp-listen 47624", "OK listening udp 47624"},
		{"udp-send 127.0.0.1 47624 hello-udp 3", "OK sent=3 ms="},
		{"tcp-listen 2300", "OK listening tcp 2300"},
		{"tcp-connect 127.0.0.1 2300 hello-tcp", "OK pc1 got hello-tcp"},
		{"icmp-ping 127.0.0.1 3 1000", "OK sent=3 recv=3 from=127.0.0.1:3 min="},
		{"raw-listen", "OK listening lo"},
		{"raw-send 0x8137 broadcast hello-ipx", "OK sent 1 frames of 23 bytes"},
	}
	for _, s := range steps {
		if got := a.dispatch(s.line); !strings.HasPrefix(got, s.wantPrefix) {
			t.Fatalf("%q -> %q, want %q...", s.line, got, s.wantPrefix)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		udp := a.dispatch("udp-recv 47624")
		raw := a.dispatch("raw-recv 0x8137")
		if udp == "OK n=3 127.0.0.1=hello-udp 127.0.0.1=hello-udp 127.0.0.1=hello-udp" && strings.Contains(raw, "=hello-ipx") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("udp-recv: %q, raw-recv: %q", udp, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := a.dispatch("icmp-echos"); !strings.HasPrefix(got, "OK in_echos=") {
		t.Errorf("icmp-echos: %q", got)
	}
	if got := a.dispatch("udp-stats"); !strings.HasPrefix(got, "OK in=") || !strings.Contains(got, " rcvbuf_errors=") {
		t.Errorf("udp-stats: %q", got)
	}
}
