package qemu

import (
	"crypto/sha256"
	"fmt"
	"net"
)

// MaxMACIndex is the largest guest index MAC accepts. Indices 0..MaxMACIndex
// of one cluster are guaranteed distinct because the index is stored, not
// hashed; planners should reject larger clusters up front.
const MaxMACIndex = 1<<24 - 1

// MAC returns the MAC address of guest number index in cluster.
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
		panic(fmt.Sprintf("qemu.MAC: guest index %d outside 0..%d", index, MaxMACIndex))
	}
	h := sha256.Sum256([]byte(cluster))
	return net.HardwareAddr{0x52, h[0], h[1], byte(index >> 16), byte(index >> 8), byte(index)}
}
