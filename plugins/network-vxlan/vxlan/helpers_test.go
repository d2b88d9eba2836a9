package vxlan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

// guest stands where QEMU stands, as in package lan's tests: a unix
// datagram socket at the guest's path that the real switch writes to.
type guest struct {
	t      testing.TB
	conn   *net.UnixConn
	swPath string
	mac    mac
}

func (g *guest) send(f []byte) {
	g.t.Helper()
	if _, err := g.conn.WriteToUnix(f, &net.UnixAddr{Name: g.swPath, Net: "unixgram"}); err != nil {
		g.t.Fatal(err)
	}
}

// frames collects what arrives until none comes for quiet, leaving out
// the stations' (any host's: their MACs are 52:xx with the locally
// administered station pattern) probes by keeping only EtherType et.
func (g *guest) frames(quiet time.Duration, et uint16) [][]byte {
	var out [][]byte
	buf := make([]byte, 1<<16)
	for {
		g.conn.SetReadDeadline(time.Now().Add(quiet))
		n, err := g.conn.Read(buf)
		if err != nil {
			return out
		}
		if n >= 14 && binary.BigEndian.Uint16(buf[12:14]) == et {
			out = append(out, append([]byte(nil), buf[:n]...))
		}
	}
}

func count(fs [][]byte, f []byte) int {
	n := 0
	for _, x := range fs {
		if bytes.Equal(x, f) {
			n++
		}
	}
	return n
}

func frame(dst, src mac, et uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), byte(et>>8), byte(et))
	return append(f, payload...)
}

// freeAddr is an unused UDP port on ip (loopback: 127.0.0.0/8 is all ours).
func freeAddr(t testing.TB, ip string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// host is one loco host: a cluster of n guests on a real segment with a
// real tunnel, started through the plugin as loco would.
type host struct {
	p      *Plugin
	guests []*guest
}

func block(vals map[string]cty.Value) sdk.Config {
	full := map[string]cty.Value{}
	for _, a := range Schema().Attributes {
		full[a.Name] = a.Default
	}
	for k, v := range vals {
		full[k] = v
	}
	return sdk.Config{Value: cty.ObjectVal(full)}
}

func startHost(t testing.TB, name string, n int, vals map[string]cty.Value) *host {
	t.Helper()
	dir, err := os.MkdirTemp("", "vx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cl := sdk.Cluster{Name: name, StateDir: dir}
	for i := 0; i < n; i++ {
		gd := filepath.Join(dir, "g", fmt.Sprint(i))
		os.MkdirAll(gd, 0o700)
		cl.Instances = append(cl.Instances, sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("%s-%d", name, i),
			MAC: sdk.MAC(name, i).String(), StateDir: gd})
	}
	p := New("test")
	if err := p.Configure(t.Context(), block(vals), cl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.tun.Close(); p.seg.Close() })
	h := &host{p: p}
	for i, in := range cl.Instances {
		path := filepath.Join(in.StateDir, "net.sock")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := p.Attach(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		hw, _ := net.ParseMAC(in.MAC)
		h.guests = append(h.guests, &guest{t: t, conn: c, swPath: filepath.Join(dir, "lan", fmt.Sprintf("%d.sock", i)), mac: mac(hw)})
	}
	return h
}

func peersVal(addrs ...netip.AddrPort) cty.Value {
	var vs []cty.Value
	for _, a := range addrs {
		vs = append(vs, cty.StringVal(a.String()))
	}
	if len(vs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	return cty.ListVal(vs)
}

var quietLog = hclog.NewNullLogger()

func nullLAN() cty.Value {
	return cty.NullVal(lanSchemaType())
}
