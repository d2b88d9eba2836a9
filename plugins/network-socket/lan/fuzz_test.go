package lan

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func fuzzSwitch() (*Switch, *station) {
	guests := []guestSpec{{"a", mac{0x52, 1, 2, 0, 0, 0}}, {"b", mac{0x52, 1, 2, 0, 0, 1}}, {"c", mac{0x52, 1, 2, 0, 0, 2}}}
	sw := newSwitch(hclog.NewNullLogger(), guests, stationMAC(guests[0].mac), time.Minute, 64)
	cfg, err := ParseConfig(defaultRaw(), len(guests))
	if err != nil {
		panic(err)
	}
	return sw, newStation(sw, hclog.NewNullLogger(), cfg, guests)
}

func drainAll(sw *Switch) (n [3]int) {
	for i, p := range sw.ports {
		for len(p.queue) > 0 {
			<-p.queue
			n[i]++
		}
	}
	return n
}

// FuzzIngress feeds arbitrary frames into a port: the switch must never
// panic, never send a frame back where it came from, and never forward a
// frame it should have dropped. Whatever reaches the station must not
// crash it either.
func FuzzIngress(f *testing.F) {
	a, b := mac{0x52, 1, 2, 0, 0, 0}, mac{0x52, 1, 2, 0, 0, 1}
	f.Add(uint8(0), frame(broadcastMAC, a, 0x0806, make([]byte, 28)))
	f.Add(uint8(1), frame(a, b, 0x0800, make([]byte, 46)))
	f.Add(uint8(2), frame(broadcastMAC, b, 0, append([]byte{0xff, 0xff}, make([]byte, 40)...)))
	f.Add(uint8(0), frame(mac{0x52, 1, 2, 0xff, 0xff, 0xfe}, a, 0x0800, make([]byte, 46)))
	f.Add(uint8(0), []byte{1, 2, 3})
	f.Add(uint8(1), make([]byte, 2000))
	f.Fuzz(func(t *testing.T, port uint8, data []byte) {
		sw, st := fuzzSwitch()
		from := int(port % 3)
		sw.Ingress(from, data)
		got := drainAll(sw)
		if got[from] != 0 {
			t.Fatalf("frame sent back to its port %d", from)
		}
		forwarded := got[0] + got[1] + got[2]
		if forwarded > 0 && (len(data) < headerLen || len(data) > maxFrameLen || data[6]&1 == 1) {
			t.Fatalf("a frame that must be dropped was forwarded (%d bytes)", len(data))
		}
		for len(st.in) > 0 {
			st.handle(<-st.in, time.Now())
		}
		drainAll(sw)
	})
}

// FuzzStation: whatever a guest sends the station, it answers or ignores,
// and never panics.
func FuzzStation(f *testing.F) {
	a := mac{0x52, 1, 2, 0, 0, 0}
	disc, _ := dhcpv4.NewDiscovery(net.HardwareAddr(a[:]))
	f.Add(dhcpFrame(f, a, disc))
	f.Add(frame(broadcastMAC, a, 0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 1, 0x52, 1, 2, 0, 0, 0, 10, 87, 0, 10, 0, 0, 0, 0, 0, 0, 10, 87, 0, 1}))
	f.Add(frame(broadcastMAC, a, 0x0800, []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 87, 0, 10, 10, 87, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sw, st := fuzzSwitch()
		st.handle(data, time.Now())
		drainAll(sw)
	})
}

// FuzzDHCP feeds arbitrary DHCP messages to the server: it must not panic,
// and must answer only guests of the cluster, with their own address.
func FuzzDHCP(f *testing.F) {
	a := mac{0x52, 1, 2, 0, 0, 0}
	disc, _ := dhcpv4.NewDiscovery(net.HardwareAddr(a[:]))
	f.Add(disc.ToBytes())
	req, _ := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr(a[:])), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 87, 0, 10))))
	f.Add(req.ToBytes())
	inf, _ := dhcpv4.NewInform(net.HardwareAddr(a[:]), net.IPv4(10, 87, 0, 10))
	f.Add(inf.ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	cfg, _ := ParseConfig(defaultRaw(), 3)
	guests := []guestSpec{{"a", a}, {"b", mac{0x52, 1, 2, 0, 0, 1}}, {"c", mac{0x52, 1, 2, 0, 0, 2}}}
	srv := newDHCPServer(cfg, guests)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		r, err := srv.respond(m)
		if err != nil || r == nil {
			return
		}
		lease, ok := srv.leases[mac(m.ClientHWAddr)]
		if !ok {
			t.Fatalf("answered %s, not a guest", net.HardwareAddr(m.ClientHWAddr))
		}
		if y := r.msg.YourIPAddr; !y.IsUnspecified() && !y.Equal(net.IP(lease.AsSlice())) {
			t.Fatalf("offered %s to a guest whose lease is %s", y, lease)
		}
		if _, err := dhcpv4.FromBytes(r.msg.ToBytes()); err != nil {
			t.Fatalf("the reply does not parse: %v", err)
		}
	})
}
