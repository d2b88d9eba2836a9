package vxlan

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// sender rebinds g's socket connected to its switch port, so a full queue
// makes it wait rather than fail, as QEMU's polling does.
func sender(b *testing.B, g *guest) *net.UnixConn {
	path := g.conn.LocalAddr().String()
	g.conn.Close()
	os.Remove(path)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}, &net.UnixAddr{Name: g.swPath, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkTunnel measures unicast frames from a guest of host a to a
// guest of host b through one VTEP pair on loopback, beside the same
// traffic between two guests of host a (the local switch alone): the
// rate without loss (at most 128 frames in flight, like a NIC ring) and
// each frame's one-way latency.
//
//	go test -run '^$' -bench Tunnel -benchtime 50000x ./plugins/network-vxlan/vxlan
func BenchmarkTunnel(b *testing.B) {
	addrA, addrB := freeAddr(b, "127.0.0.1"), freeAddr(b, "127.0.0.2")
	cfg := func(listen, peer netip.AddrPort, hostIP string) map[string]cty.Value {
		return map[string]cty.Value{"listen": cty.StringVal(listen.String()), "peers": peersVal(peer),
			"host_ip": cty.StringVal(hostIP), "dhcp": cty.False} // no DHCP, no probes: only the measured traffic
	}
	a := startHost(b, "ba", 2, cfg(addrA, addrB, "10.87.0.1"))
	bh := startHost(b, "bb", 1, cfg(addrB, addrA, "10.87.0.2"))
	out := sender(b, a.guests[0])
	bcast := mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// Every receiver speaks once, so both switches and the tunnel know
	// where it is and the traffic is unicast.
	for _, g := range []*guest{a.guests[1], bh.guests[0]} {
		g.send(frame(bcast, g.mac, 0x0800, make([]byte, 46)))
	}
	time.Sleep(200 * time.Millisecond)
	for _, g := range []*guest{a.guests[1], bh.guests[0]} {
		g.frames(50*time.Millisecond, 0x0800)
	}
	paths := []struct {
		name string
		to   *guest
	}{{"local", a.guests[1]}, {"vxlan", bh.guests[0]}}
	for _, p := range paths {
		for _, size := range []int{60, 1464} { // 1464: the largest frame a 1500-byte underlay carries
			b.Run(fmt.Sprintf("%s/throughput/%dB", p.name, size), func(b *testing.B) {
				f := frame(p.to.mac, a.guests[0].mac, 0x0800, make([]byte, size-14))
				const window = 128
				var received atomic.Int64
				done := make(chan struct{})
				go func() {
					defer close(done)
					buf := make([]byte, 2048)
					for received.Load() < int64(b.N) {
						p.to.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
						n, err := p.to.conn.Read(buf)
						if err != nil {
							return
						}
						if n == len(f) {
							received.Add(1)
						}
					}
				}()
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					for int64(i)-received.Load() >= window {
						select {
						case <-done:
							st, _ := a.p.Status(b.Context())
							b.Fatalf("frames stopped arriving after %d of %d (drops %v)", received.Load(), b.N, st.Drops)
						default:
							runtime.Gosched()
						}
					}
					if _, err := out.Write(f); err != nil {
						b.Fatal(err)
					}
				}
				<-done
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "frames/s")
				if got := received.Load(); got != int64(b.N) {
					st, _ := a.p.Status(b.Context())
					b.Errorf("%d of %d frames arrived; drops %v", got, b.N, st.Drops)
				}
			})
		}
		b.Run(p.name+"/latency", func(b *testing.B) {
			f := frame(p.to.mac, a.guests[0].mac, 0x0800, make([]byte, 46))
			buf := make([]byte, 2048)
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := out.Write(f); err != nil {
					b.Fatal(err)
				}
				p.to.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := p.to.conn.Read(buf); err != nil {
					b.Fatalf("frame %d did not arrive: %v", i, err)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-p50")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "µs-p99")
		})
	}
}
