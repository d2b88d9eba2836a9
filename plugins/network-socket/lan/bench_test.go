package lan

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

// benchSender is a guest that only sends. Its socket is bound at the
// guest's path (the switch checks the source) and connected to the switch,
// so a full switch queue makes it wait instead of failing: QEMU's main loop
// does the same by polling.
func benchSender(b *testing.B, g *testGuest) *net.UnixConn {
	g.conn.Close()
	os.Remove(g.path)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: g.path, Net: "unixgram"}, &net.UnixAddr{Name: g.swPath, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkForward measures the switch between two guests' sockets: the
// frames/s it forwards without loss, and the latency it adds to a single
// frame (p50, p99) over a direct socket to socket hop.
//
//	go test -run '^$' -bench Forward -benchtime 20000x ./plugins/network-socket/lan
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{60, 1514} {
		b.Run(fmt.Sprintf("throughput/%dB", size), func(b *testing.B) {
			raw := defaultRaw()
			raw.DHCP = false // no probes: only the measured traffic
			seg, g := startLAN(b, 2, raw)
			out := benchSender(b, g[0])
			// Teach the switch where guest 1 is, so the traffic is unicast.
			g[1].conn.WriteToUnix(frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46)), &net.UnixAddr{Name: g[1].swPath, Net: "unixgram"})
			time.Sleep(50 * time.Millisecond)
			f := frame(g[1].mac, g[0].mac, 0x0800, make([]byte, size-headerLen))
			// The sender keeps at most window frames in flight, as a
			// guest's NIC ring would: this measures the rate the switch
			// sustains, not how fast an unpaced sender overflows it.
			const window = 128
			var received atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 2048)
				for received.Load() < int64(b.N) {
					g[1].conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					if _, err := g[1].conn.Read(buf); err != nil {
						return
					}
					received.Add(1)
				}
			}()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for int64(i)-received.Load() >= window {
					select {
					case <-done:
						b.Fatalf("frames stopped arriving after %d of %d (drops %v)", received.Load(), b.N, seg.sw.Drops())
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
			got := received.Load()
			b.ReportMetric(float64(got)/elapsed.Seconds(), "frames/s")
			if got != int64(b.N) {
				b.Errorf("%d of %d frames arrived; switch drops %v", got, b.N, seg.sw.Drops())
			}
		})
	}
	b.Run("latency", func(b *testing.B) {
		raw := defaultRaw()
		raw.DHCP = false
		_, g := startLAN(b, 2, raw)
		out := benchSender(b, g[0])
		g[1].conn.WriteToUnix(frame(broadcastMAC, g[1].mac, 0x0800, make([]byte, 46)), &net.UnixAddr{Name: g[1].swPath, Net: "unixgram"})
		time.Sleep(50 * time.Millisecond)
		f := frame(g[1].mac, g[0].mac, 0x0800, make([]byte, 46))
		via := oneWay(b, b.N, func() error { _, err := out.Write(f); return err }, g[1].conn)

		// The same hop without the switch: one socket straight to another.
		dir := b.TempDir()
		rx, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "rx"), Net: "unixgram"})
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		tx, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: filepath.Join(dir, "rx"), Net: "unixgram"})
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Close()
		direct := oneWay(b, b.N, func() error { _, err := tx.Write(f); return err }, rx)
		b.ReportMetric(float64(pct(via, 50).Microseconds()), "µs-p50")
		b.ReportMetric(float64(pct(via, 99).Microseconds()), "µs-p99")
		b.ReportMetric(float64((pct(via, 50) - pct(direct, 50)).Microseconds()), "µs-added-p50")
		b.ReportMetric(float64((pct(via, 99) - pct(direct, 99)).Microseconds()), "µs-added-p99")
	})
}

// oneWay sends n frames one at a time and times each until it arrives.
func oneWay(b *testing.B, n int, send func() error, rx *net.UnixConn) []time.Duration {
	buf := make([]byte, 2048)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := send(); err != nil {
			b.Fatal(err)
		}
		rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rx.Read(buf); err != nil {
			b.Fatalf("frame %d did not arrive: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}
