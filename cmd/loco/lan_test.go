package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/locolan/loco/sdk"
)

func pcapBytes(t testing.TB, frames int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < frames; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 60)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: 60, Length: 60}, data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// TestCopyPcapKeepsWholeRecords: a capture cut off mid-frame (Ctrl-C, a
// restarted plugin) still leaves a file tcpdump reads to the end.
func TestCopyPcapKeepsWholeRecords(t *testing.T) {
	full := pcapBytes(t, 3)
	cases := []struct {
		name    string
		in      []byte
		frames  int
		wantErr bool
	}{
		{"whole stream", full, 3, false},
		{"cut in the last record", full[:len(full)-10], 2, true},
		{"header only", full[:24], 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := copyPcap(&out, bytes.NewReader(tc.in))
			if n != tc.frames || (err != nil) != tc.wantErr {
				t.Fatalf("copied %d frames, err %v; want %d, error %v", n, err, tc.frames, tc.wantErr)
			}
			size := out.Len()
			r, err := pcapgo.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for {
				if _, _, err := r.ReadPacketData(); err != nil {
					break
				}
				got++
			}
			if got != tc.frames || size != 24+tc.frames*(16+60) {
				t.Errorf("the written file holds %d frames in %d bytes", got, size)
			}
		})
	}
}

func TestLANStatusTable(t *testing.T) {
	st := sdk.LANStatus{Healthy: false, Summary: "1/2 guests reachable: b-1 silent for 4s", HostMAC: "52:00:00:ff:ff:fe",
		HostIP: "10.87.0.1", Subnet: "10.87.0.0/24", Drops: map[string]uint64{"runt": 1},
		Ports: []sdk.Port{
			{Instance: 0, Name: "b-0", MAC: "52:00:00:00:00:00", IPs: []string{"10.87.0.10"}, LinkUp: true, Reachable: true,
				RTTMillis: 1.234, RxFrames: 5, RxBytes: 2048, FramesByEtherType: map[string]uint64{"IPX": 2},
				RxByEtherType: map[string]sdk.Traffic{"IPX": {Frames: 2, Bytes: 120}}},
			{Instance: 1, Name: "b-1", MAC: "52:00:00:00:00:01", FramesByEtherType: map[string]uint64{"IPX": 2},
				TxByEtherType: map[string]sdk.Traffic{"IPX": {Frames: 2, Bytes: 120}}},
		},
		Links: []sdk.Link{{From: 0, To: 1, Frames: 7}},
		Uplinks: []sdk.Uplink{{Name: "vxlan", Address: "127.0.0.2:4789", Reachable: true, LastSeenMillis: 120,
			RxFrames: 9, RxBytes: 900, TxFrames: 8, TxBytes: 4096, MACs: []string{"52:00:00:00:01:00", "52:00:00:00:01:01"}, RTTMillis: 0.5},
			{Name: "vxlan", Address: "127.0.0.3:4789", LastSeenMillis: -1, MACs: []string{}}},
	}
	var b bytes.Buffer
	if err := writeLANStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"LAN UNHEALTHY: 1/2 guests reachable: b-1 silent for 4s",
		"switch 52:00:00:ff:ff:fe 10.87.0.1, DHCP 10.87.0.0/24",
		"b-0    52:00:00:00:00:00  10.87.0.10  up    yes        1.23ms  5          2.0 KiB",
		"b-1    52:00:00:00:00:01  -           down  no         -",
		"b-0    2/0", "b-1    0/2",
		"b-0  -    7", "b-1  0    -",
		"Dropped frames: runt=1",
		"127.0.0.2:4789  yes        0.50ms  120ms      9          900 B     8          4.0 KiB   52:00:00:00:01:00,52:00:00:00:01:01",
		"127.0.0.3:4789  no         -       never      0          0 B       0          0 B       -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
