package sdk

import (
	"bytes"
	"testing"
)

func TestMAC(t *testing.T) {
	tests := []struct {
		cluster string
		index   int
	}{
		{"lab", 0}, {"lab", 1}, {"lab", 65535}, {"lab", 65536}, {"lab", MaxMACIndex}, {"", 7}, {"other", 1},
	}
	for _, tt := range tests {
		mac := MAC(tt.cluster, tt.index)
		if len(mac) != 6 {
			t.Fatalf("MAC(%q, %d) = %v: want 6 bytes", tt.cluster, tt.index, mac)
		}
		if mac[0]&0x01 != 0 {
			t.Errorf("MAC(%q, %d) = %v is multicast", tt.cluster, tt.index, mac)
		}
		if mac[0]&0x02 == 0 {
			t.Errorf("MAC(%q, %d) = %v is not locally administered", tt.cluster, tt.index, mac)
		}
		if again := MAC(tt.cluster, tt.index); !bytes.Equal(mac, again) {
			t.Errorf("MAC(%q, %d) not stable: %v then %v", tt.cluster, tt.index, mac, again)
		}
	}
}

func TestMACUniqueWithinCluster(t *testing.T) {
	for _, cluster := range []string{"lab", "a-much-longer-cluster-name"} {
		seen := make(map[string]int)
		for i := 1; i <= 70000; i++ {
			s := MAC(cluster, i).String()
			if prev, dup := seen[s]; dup {
				t.Fatalf("cluster %q: guests %d and %d share MAC %s", cluster, prev, i, s)
			}
			seen[s] = i
		}
	}
}

func TestMACDiffersAcrossClusters(t *testing.T) {
	if bytes.Equal(MAC("lab", 1), MAC("prod", 1)) {
		t.Errorf("clusters lab and prod give guest 1 the same MAC %v", MAC("lab", 1))
	}
}

func TestMACRejectsOutOfRange(t *testing.T) {
	for _, index := range []int{-1, MaxMACIndex + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MAC(\"lab\", %d) did not panic", index)
				}
			}()
			MAC("lab", index)
		}()
	}
}

// TestStationMAC checks that plugin stations share the guests' prefix, never
// take a guest's address, differ from each other, and that station 0 is
// ff:ff:fe, the address network-socket has always used.
func TestStationMAC(t *testing.T) {
	guest := MAC("lab", 3)
	if got, want := StationMAC(guest, 0).String(), guest.String()[:9]+"ff:ff:fe"; got != want {
		t.Errorf("StationMAC(%v, 0) = %s, want %s", guest, got, want)
	}
	seen := map[string]int{MAC("lab", MaxMACIndex).String(): -1, MAC("lab", 0).String(): -1}
	for n := 0; n <= MaxStation; n++ {
		m := StationMAC(guest, n)
		if !bytes.Equal(m[:3], guest[:3]) {
			t.Fatalf("StationMAC(%v, %d) = %v: not the cluster's prefix", guest, n, m)
		}
		if idx := int(m[3])<<16 | int(m[4])<<8 | int(m[5]); idx <= MaxMACIndex {
			t.Fatalf("StationMAC(%v, %d) = %v: index %d is a guest's", guest, n, m, idx)
		}
		if prev, dup := seen[m.String()]; dup {
			t.Fatalf("StationMAC(%v, %d) = %v, already taken by %d", guest, n, m, prev)
		}
		seen[m.String()] = n
	}
	for _, n := range []int{-1, MaxStation + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("StationMAC(guest, %d) did not panic", n)
				}
			}()
			StationMAC(guest, n)
		}()
	}
}
