package vxlan

import (
	"bytes"
	"testing"
	"time"
)

func TestFramingIsRFC7348(t *testing.T) {
	inner := frame(mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac{0x52, 0, 0, 0, 0, 1}, 0x8137, []byte("ipx"))
	d := encap(0x123456, inner)
	want := []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0}
	if !bytes.Equal(d[:8], want) || !bytes.Equal(d[8:], inner) {
		t.Fatalf("header % x, want % x", d[:8], want)
	}
	if f, _, ok := decap(d, 0x123456); !ok || !bytes.Equal(f, inner) {
		t.Fatalf("decap of our own datagram: ok=%v", ok)
	}
	// Reserved bits are ignored on receipt (section 5).
	r := append([]byte(nil), d...)
	r[0], r[1], r[3], r[7] = 0xff, 0xff, 0xff, 0xff
	if _, _, ok := decap(r, 0x123456); !ok {
		t.Error("a datagram with reserved bits set was dropped")
	}
	for _, tc := range []struct {
		name string
		b    []byte
		why  dropReason
	}{
		{"empty", nil, dropShort},
		{"7 bytes", d[:7], dropShort},
		{"I flag clear", append([]byte{0x00}, d[1:]...), dropNoIFlag},
		{"wrong VNI", encap(0x123457, inner), dropWrongVNI},
		{"header only", d[:8], dropInnerRunt},
		{"inner runt", d[:8+13], dropInnerRunt},
	} {
		if _, why, ok := decap(tc.b, 0x123456); ok || why != tc.why {
			t.Errorf("%s: ok=%v why=%s, want %s", tc.name, ok, dropNames[why], dropNames[tc.why])
		}
	}
}

func TestHeartbeatsAreNotVXLAN(t *testing.T) {
	now := time.Unix(1700000000, 42)
	b := heartbeat(hbPing, now)
	if typ, sent, ok := parseHeartbeat(b); !ok || typ != hbPing || !sent.Equal(now) {
		t.Fatalf("parse: %v %d %v", ok, typ, sent)
	}
	if _, why, ok := decap(b, 0); ok || why != dropNoIFlag {
		t.Error("a heartbeat would pass as VXLAN at a VTEP that is not loco")
	}
	if _, _, ok := parseHeartbeat(encap(1, make([]byte, 8))); ok {
		t.Error("a VXLAN datagram parsed as a heartbeat")
	}
}

func TestTableLearnsAgesAndIsBounded(t *testing.T) {
	a, b := &peer{}, &peer{}
	tb := newFDB(time.Minute, 2)
	now := time.Now()
	m1, m2, m3 := mac{2, 0, 0, 0, 0, 1}, mac{2, 0, 0, 0, 0, 2}, mac{2, 0, 0, 0, 0, 3}
	tb.learn(m1, a, now)
	if tb.lookup(m1, now) != a || tb.lookup(m2, now) != nil {
		t.Fatal("lookup after learning one address")
	}
	tb.learn(m1, b, now) // the station moved to another host
	if tb.lookup(m1, now) != b {
		t.Error("a moved address stays behind its old peer")
	}
	tb.learn(m2, a, now)
	tb.learn(m3, a, now) // full: not learned, frames to it flood
	if tb.lookup(m3, now) != nil {
		t.Error("the table grew past its bound")
	}
	later := now.Add(2 * time.Minute)
	if tb.lookup(m1, later) != nil {
		t.Error("an address older than the ageing time is still known")
	}
	tb.learn(m3, a, later) // the sweep makes room
	if tb.lookup(m3, later) != a {
		t.Error("aged-out entries were not swept for a new one")
	}
	if got := tb.behind(later)[a]; len(got) != 1 || got[0] != m3.String() {
		t.Errorf("behind: %v", got)
	}
}
