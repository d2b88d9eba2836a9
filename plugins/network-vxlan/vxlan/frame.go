package vxlan

import (
	"encoding/binary"
	"time"
)

// RFC 7348 section 5: an 8-byte header before the inner Ethernet frame.
// Byte 0 holds the flags, of which only I (0x08, "the VNI is valid") is
// defined; bytes 4-6 the 24-bit VNI; the rest is reserved, sent as zero
// and ignored on receipt.
const (
	headerLen = 8
	flagI     = 0x08
	maxVNI    = 1<<24 - 1
	// DefaultPort is the IANA port for VXLAN.
	DefaultPort = 4789
	// overhead is what the underlay carries besides the inner frame: outer
	// IPv4 (20), UDP (8) and VXLAN (8) headers. With the inner Ethernet
	// header (14) that is the usual "VXLAN adds 50 bytes".
	overhead     = 20 + 8 + headerLen
	ethHeaderLen = 14
)

// encap writes the header for vni and frame into a new datagram.
func encap(vni uint32, frame []byte) []byte {
	b := make([]byte, headerLen+len(frame))
	b[0] = flagI
	binary.BigEndian.PutUint32(b[4:8], vni<<8)
	copy(b[headerLen:], frame)
	return b
}

// dropReason is why a datagram or frame did not cross the tunnel.
type dropReason int

const (
	dropShort       dropReason = iota // shorter than a VXLAN header
	dropNoIFlag                       // I flag clear: no valid VNI
	dropWrongVNI                      // another segment's VNI
	dropInnerRunt                     // inner frame shorter than an Ethernet header
	dropUnknownPeer                   // source address is not a configured peer
	dropTooBig                        // frame would not fit the underlay MTU
	dropMACConflict                   // a frame from a peer claims a local guest's MAC
	dropSendError                     // the UDP send failed
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropShort: "vxlan_short_header", dropNoIFlag: "vxlan_no_i_flag", dropWrongVNI: "vxlan_wrong_vni",
	dropInnerRunt: "vxlan_inner_runt", dropUnknownPeer: "vxlan_unknown_peer", dropTooBig: "vxlan_too_big",
	dropMACConflict: "vxlan_mac_conflict", dropSendError: "vxlan_send_error",
}

// decap checks datagram b against vni and returns the inner frame (a
// slice of b), or why b is dropped (ok false).
func decap(b []byte, vni uint32) (frame []byte, why dropReason, ok bool) {
	switch {
	case len(b) < headerLen:
		return nil, dropShort, false
	case b[0]&flagI == 0:
		return nil, dropNoIFlag, false
	case binary.BigEndian.Uint32(b[4:8])>>8 != vni:
		return nil, dropWrongVNI, false
	case len(b)-headerLen < ethHeaderLen:
		return nil, dropInnerRunt, false
	}
	return b[headerLen:], 0, true
}

// Heartbeats are loco's own datagrams between peers, for reachability and
// RTT when no guest talks. They have the I flag clear, so a VTEP that is
// not loco (the Linux kernel's) drops them as not VXLAN, and a loco
// receiver tells them from VXLAN by the magic before checking flags.
const (
	hbLen  = 16
	hbPing = 1
	hbPong = 2
)

var hbMagic = [3]byte{'l', 'c', 'o'}

func heartbeat(typ byte, sent time.Time) []byte {
	b := make([]byte, hbLen)
	copy(b[1:4], hbMagic[:])
	b[4] = typ
	binary.BigEndian.PutUint64(b[8:], uint64(sent.UnixNano()))
	return b
}

// parseHeartbeat reports whether b is a heartbeat, its type and timestamp.
func parseHeartbeat(b []byte) (typ byte, sent time.Time, ok bool) {
	if len(b) != hbLen || b[0] != 0 || [3]byte(b[1:4]) != hbMagic || (b[4] != hbPing && b[4] != hbPong) {
		return 0, time.Time{}, false
	}
	return b[4], time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))), true
}
