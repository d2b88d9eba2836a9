package lan

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestDHCPOffersTheMTUOnlyWhenTold checks option 26: a tunnel plugin sets
// it with WithDHCPMTU; the socket plugin's offers carry none.
func TestDHCPOffersTheMTUOnlyWhenTold(t *testing.T) {
	cfg, err := ParseConfig(defaultRaw(), 1)
	if err != nil {
		t.Fatal(err)
	}
	g := []guestSpec{{name: "g0", mac: mac{0x52, 0x54, 0, 0, 0, 1}}}
	disc, err := dhcpv4.NewDiscovery(net.HardwareAddr(g[0].mac[:]))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want []byte
	}{{cfg, nil}, {cfg.WithDHCPMTU(1450), []byte{0x05, 0xaa}}} {
		r, err := newDHCPServer(tc.cfg, g).respond(disc)
		if err != nil || r == nil {
			t.Fatalf("no offer: %v", err)
		}
		got := r.msg.Options.Get(dhcpv4.OptionInterfaceMTU)
		if string(got) != string(tc.want) {
			t.Errorf("mtu %d: option 26 is %x, want %x", tc.cfg.dhcpMTU, got, tc.want)
		}
	}
}
