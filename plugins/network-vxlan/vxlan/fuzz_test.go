package vxlan

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/plugins/network-socket/lan"
	"github.com/locolan/loco/sdk"
)

// FuzzReceive feeds any datagram from a configured peer (and, by the
// first byte, from a stranger) through the tunnel's whole receive path
// into a real segment: it must never panic, and whatever it accepts must
// be a frame the switch can take.
func FuzzReceive(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(encap(defaultVNI, frame(mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac{0x52, 1, 2, 3, 4, 5}, 0x8137, []byte("ipx"))), false)
	f.Add(heartbeat(hbPing, time.Unix(1, 0)), false)
	f.Add(heartbeat(hbPong, time.Unix(1, 0)), true)
	f.Add([]byte{0x08, 0, 0, 0, 0, 0x10, 0x92, 0}, false)

	dir := f.TempDir()
	gd := filepath.Join(dir, "g0")
	os.MkdirAll(gd, 0o700)
	cl := sdk.Cluster{Name: "fz", StateDir: dir, Instances: []sdk.Instance{{Name: "fz-0", MAC: sdk.MAC("fz", 0).String(), StateDir: gd}}}
	cfg, err := lan.DecodeConfig(sdk.Config{Value: nullLAN()}, 1)
	if err != nil {
		f.Fatal(err)
	}
	seg, err := lan.NewSegment(quietLog, cfg, cl)
	if err != nil {
		f.Fatal(err)
	}
	defer seg.Close()
	// Attaching starts the switch and its station, which take what the
	// tunnel delivers.
	if _, err := seg.Attach(0); err != nil {
		f.Fatal(err)
	}
	peerAddr := netip.MustParseAddrPort("127.0.0.1:9") // discard: pongs go nowhere
	tun, err := NewTunnel(quietLog, TunnelConfig{VNI: defaultVNI, Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Peers: []netip.AddrPort{peerAddr}, UnderlayMTU: 1500, Ageing: time.Minute, Heartbeat: time.Hour,
		LocalMACs: []string{cl.Instances[0].MAC}}, seg.AddUplink("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	defer tun.Close()
	stranger := netip.MustParseAddrPort("127.0.0.77:4789")
	f.Fuzz(func(t *testing.T, b []byte, fromStranger bool) {
		src := netip.AddrPortFrom(peerAddr.Addr(), 51234) // any source port: VTEPs choose one per flow
		if fromStranger {
			src = stranger
		}
		tun.receive(b, src, time.Now())
		if fr, _, ok := decap(b, defaultVNI); ok && !fromStranger && len(fr) < ethHeaderLen {
			t.Fatalf("accepted a %d-byte inner frame", len(fr))
		}
	})
}

func lanSchemaType() cty.Type { return lan.Schema().ImpliedType() }
