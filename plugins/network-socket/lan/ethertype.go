package lan

import (
	"encoding/binary"
	"fmt"
)

// Frame limits. QEMU hands over frames without the FCS, and NICs pad short
// frames themselves on receive, so anything with a whole Ethernet header is
// forwardable; the largest is a 1500-byte payload with an 802.1Q tag.
const (
	headerLen   = 14
	maxFrameLen = headerLen + 4 + 1500
)

// class is a traffic class for counters: an EtherType LAN games care about,
// or for 802.3 length-field frames what their LLC header says.
type class uint8

const (
	classIPv4 class = iota
	classARP
	classIPv6
	classIPX         // Ethernet II, EtherType 0x8137
	classIPX8023     // Novell "raw 802.3": length field, then 0xFFFF
	classIPXLLC      // 802.2 LLC with SAP 0xE0
	classNetBEUI     // 802.2 LLC with SAP 0xF0
	classSNAP        // 802.2 LLC/SNAP (SAP 0xAA)
	classLLC         // any other 802.3 frame
	classVLAN        // 802.1Q tagged
	classOther       // any other EtherType; counted by number
	numClasses   int = iota
)

var classNames = [numClasses]string{
	classIPv4: "IPv4", classARP: "ARP", classIPv6: "IPv6", classIPX: "IPX",
	classIPX8023: "IPX/802.3", classIPXLLC: "IPX/LLC", classNetBEUI: "NetBEUI",
	classSNAP: "SNAP", classLLC: "LLC", classVLAN: "802.1Q", classOther: "other",
}

// classify names a frame's protocol; it needs a whole Ethernet header. For
// classOther, et is the EtherType, so counters can name it.
func classify(f []byte) (c class, et uint16) {
	et = binary.BigEndian.Uint16(f[12:14])
	switch et {
	case 0x0800:
		return classIPv4, et
	case 0x0806:
		return classARP, et
	case 0x86DD:
		return classIPv6, et
	case 0x8137:
		return classIPX, et
	case 0x8100:
		return classVLAN, et
	}
	if et > 1500 {
		return classOther, et
	}
	// 802.3: the type field is the payload length; what follows says who
	// it is for.
	p := f[headerLen:]
	if len(p) < 2 {
		return classLLC, et
	}
	switch {
	case p[0] == 0xFF && p[1] == 0xFF:
		return classIPX8023, et
	case p[0] == 0xE0 && p[1] == 0xE0:
		return classIPXLLC, et
	case p[0] == 0xF0 && p[1] == 0xF0:
		return classNetBEUI, et
	case p[0] == 0xAA && p[1] == 0xAA:
		return classSNAP, et
	}
	return classLLC, et
}

// etherTypeName is the counter key of an EtherType without a class.
func etherTypeName(et uint16) string { return fmt.Sprintf("0x%04x", et) }
