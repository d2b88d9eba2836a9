package vxlan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

func TestConfigDefaultsAndProblems(t *testing.T) {
	c, err := DecodeConfig(sdk.Config{Value: cty.NullVal(Schema().ImpliedType())}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.VNI != defaultVNI || c.Listen != netip.MustParseAddrPort(defaultListen) || len(c.Peers) != 0 || c.UnderlayMTU != 1500 {
		t.Errorf("defaults: %+v", c)
	}
	if _, err := DecodeConfig(block(nil), 2); err != nil {
		t.Errorf("the schema's defaults: %v", err)
	}
	for _, tc := range []struct {
		vals map[string]cty.Value
		attr string
		want string
	}{
		{map[string]cty.Value{"vni": cty.NumberIntVal(1 << 24)}, "vni", "Out of range"},
		{map[string]cty.Value{"vni": cty.NumberIntVal(0)}, "vni", "Out of range"},
		{map[string]cty.Value{"listen": cty.StringVal("4789")}, "listen", "Not an address"},
		{map[string]cty.Value{"peers": peersVal(netip.MustParseAddrPort("10.0.0.2:4789")), "host_ip": cty.StringVal("")}, "host_ip", "own station address"},
		{map[string]cty.Value{"peers": cty.ListVal([]cty.Value{cty.StringVal("10.0.0.2:4789"), cty.StringVal("10.0.0.2:4790")}),
			"host_ip": cty.StringVal("10.87.0.2")}, "peers", "Two peers on one IP"},
		{map[string]cty.Value{"peers": cty.ListVal([]cty.Value{cty.StringVal("127.0.0.1:4790")}), "host_ip": cty.StringVal("10.87.0.2")}, "peers", "Peer is this host"},
		{map[string]cty.Value{"underlay_mtu": cty.NumberIntVal(500)}, "underlay_mtu", "Out of range"},
		{map[string]cty.Value{"peer_mac_ageing": cty.StringVal("1s")}, "peer_mac_ageing", "10s or more"},
		{map[string]cty.Value{"subnet": cty.StringVal("nope")}, "subnet", "Not a subnet"}, // lan's attributes are checked too
	} {
		_, err := DecodeConfig(block(tc.vals), 2)
		var ae *sdk.AttrError
		if !errors.As(err, &ae) || ae.Path[0] != tc.attr || !strings.Contains(ae.Summary, tc.want) {
			t.Errorf("%v: got %v, want %s: %s", tc.vals, err, tc.attr, tc.want)
		}
	}
	c, err = DecodeConfig(block(map[string]cty.Value{"underlay_mtu": cty.NumberIntVal(1420)}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LAN.WithDHCPMTU(1370); c.LAN != want {
		t.Error("DHCP does not offer underlay_mtu-50")
	}
}
