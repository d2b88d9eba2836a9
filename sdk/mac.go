package sdk

import (
	"crypto/sha256"
	"fmt"
	"net"
)

// NetdevID is the id a network plugin gives the backend it returns from
// Attach ("-netdev TYPE,id=net0,..."); the core adds the guest's NIC
// ("-device MODEL,netdev=net0,mac=MAC") and refuses arguments that define
// no such backend or attach a device to it themselves.
const NetdevID = "net0"

// AudiodevID is the audiodev the guest's sound card plays into. A plugin
// that wants the sound passes its own "-audiodev DRIVER,id=snd0,..." from
// Attach; without one the core adds a silent "none" backend.
const AudiodevID = "snd0"

// MaxMACIndex is the largest guest index MAC accepts. Indices 0..MaxMACIndex
// of one cluster are guaranteed distinct because the index is stored, not
// hashed. The indices above it are never a guest's: StationMAC hands them to
// plugins.
const MaxMACIndex = 1<<24 - 1 - 256

// MAC returns the MAC address the core gives guest number index in cluster.
//
// Layout: 52:CC:CC:II:II:II. 0x52 sets the locally-administered bit and
// clears the multicast bit, so it never collides with vendor-assigned
// hardware; CC:CC is a hash of the cluster name so clusters sharing a
// segment are unlikely (1 in 65536 per pair) to overlap; II:II:II is the
// index itself, which makes addresses within a cluster unique by
// construction rather than by luck.
//
// MAC panics if index is outside 0..MaxMACIndex: silently wrapping would hand
// two guests the same address.
func MAC(cluster string, index int) net.HardwareAddr {
	if index < 0 || index > MaxMACIndex {
		panic(fmt.Sprintf("sdk.MAC: guest index %d outside 0..%d", index, MaxMACIndex))
	}
	h := sha256.Sum256([]byte(cluster))
	return net.HardwareAddr{0x52, h[0], h[1], byte(index >> 16), byte(index >> 8), byte(index)}
}

// MaxStation is the largest n StationMAC accepts.
const MaxStation = 254

// StationMAC returns the n-th address (0..MaxStation) reserved for a
// plugin's own stations on the segment (a DHCP server, an uplink): guest's
// first three bytes, which all guests of a cluster share, and an index above
// MaxMACIndex, counted down from ff:ff:fe. It is derived, not stored, so it
// is the same after every restart of the plugin and the guests' ARP caches
// stay right. guest is any guest's MAC of the cluster.
//
// StationMAC panics if n is out of range or guest is not 6 bytes.
func StationMAC(guest net.HardwareAddr, n int) net.HardwareAddr {
	if n < 0 || n > MaxStation {
		panic(fmt.Sprintf("sdk.StationMAC: station %d outside 0..%d", n, MaxStation))
	}
	if len(guest) != 6 {
		panic(fmt.Sprintf("sdk.StationMAC: %v is not a 6-byte MAC", guest))
	}
	index := 1<<24 - 2 - n
	return net.HardwareAddr{guest[0], guest[1], guest[2], byte(index >> 16), byte(index >> 8), byte(index)}
}
