package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/locolan/loco/sdk"
)

// waitReachable waits until every guest answers the prober.
func waitReachable(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) error {
	return waitFor(ctx, "every guest reachable on the LAN", 5*time.Minute, 250*time.Millisecond, func() (bool, error) {
		st, err := c.lan(ctx)
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range st.Ports {
			if p.Reachable {
				n++
			}
		}
		progress(0, fmt.Sprintf("waiting for the guests: %d/%d reachable", n, len(st.Ports)))
		return len(st.Ports) > 0 && n == len(st.Ports), nil
	})
}

// runLAN samples the LAN's status over a window. The prober's RTT changes
// once per probe round, so a sample is kept only when it changed.
func runLAN(ctx context.Context, c *client, req sdk.RunRequest, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	window, err := param(req, "window", 10)
	if err != nil {
		return nil, err
	}
	tp, err := parseTrafficParams(req)
	if err != nil {
		return nil, err
	}
	if err := waitReachable(ctx, c, req, progress); err != nil {
		return nil, err
	}
	first, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	w := time.Duration(window * float64(time.Second))
	rtt := map[string][]float64{}
	last := map[string]float64{}
	reach, polls := map[string]int{}, 0
	var st lanStatus
	for time.Since(t0) < w {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		st, err = c.lan(ctx)
		if err != nil {
			return nil, err
		}
		polls++
		for _, p := range st.Ports {
			if p.Reachable {
				reach[p.Name]++
			}
			if p.RTTMillis > 0 && p.RTTMillis != last[p.Name] {
				rtt[p.Name] = append(rtt[p.Name], p.RTTMillis)
				last[p.Name] = p.RTTMillis
			}
		}
		progress(time.Since(t0).Seconds()/window, fmt.Sprintf("sampling the LAN: %.0f/%.0f s", time.Since(t0).Seconds(), window))
	}
	secs := time.Since(t0).Seconds()
	before := map[string]int{}
	for i, p := range first.Ports {
		before[p.Name] = i
	}
	var rows []sdk.BenchRow
	var pooled []float64
	for _, p := range st.Ports {
		v := map[string]float64{"reachable_fraction": float64(reach[p.Name]) / float64(max(polls, 1))}
		if i, ok := before[p.Name]; ok {
			f := first.Ports[i]
			v["rx_frames_per_s"] = float64(p.RxFrames-f.RxFrames) / secs
			v["tx_frames_per_s"] = float64(p.TxFrames-f.TxFrames) / secs
			v["drops_per_s"] = float64(p.Drops-f.Drops) / secs
		}
		summary(v, "rtt", "ms", rtt[p.Name])
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"guest": p.Name}, Values: v, Samples: map[string][]float64{"rtt_ms": rtt[p.Name]}})
		pooled = append(pooled, rtt[p.Name]...)
	}
	var drops uint64
	for k, n := range st.Drops {
		drops += n - first.Drops[k]
	}
	all := map[string]float64{"segment_drops_per_s": float64(drops) / secs}
	summary(all, "rtt", "ms", pooled)
	switch {
	case tp.off:
	case len(st.Ports) < 2:
		progress(1, "one guest: no traffic between guests to measure")
	default:
		more, err := runTraffic(ctx, c, tp, st, all, progress)
		if err != nil {
			return nil, err
		}
		rows = append(rows, more...)
	}
	return append(rows, sdk.BenchRow{Labels: map[string]string{"guest": "all"}, Values: all}), nil
}

type trafficParams struct {
	off                                  bool
	udpCount, udpSize, bcastCount, pings int
}

// parseTrafficParams reads the traffic part's params, checked before
// anything is measured; the limits are the test agent's.
func parseTrafficParams(req sdk.RunRequest) (trafficParams, error) {
	var tp trafficParams
	switch tr := req.Params["traffic"]; tr {
	case "", "on":
	case "off":
		tp.off = true
	default:
		return tp, fmt.Errorf("--param traffic=%q: on or off: %w", tr, sdk.ErrInvalid)
	}
	for _, p := range []struct {
		name     string
		def, max float64
		to       *int
	}{{"udp_count", 2000, 100000, &tp.udpCount}, {"udp_size", 1000, 1472, &tp.udpSize}, {"bcast_count", 100, 10000, &tp.bcastCount}, {"pings", 50, 10000, &tp.pings}} {
		v, err := param(req, p.name, p.def)
		if err != nil {
			return tp, err
		}
		if v != float64(int(v)) || v > p.max || (p.name == "udp_size" && v < 10) {
			return tp, fmt.Errorf("--param %s=%v: a whole number up to %v%s: %w", p.name, v, p.max, map[bool]string{true: ", at least 10 (the text in it)"}[p.name == "udp_size"], sdk.ErrInvalid)
		}
		*p.to = int(v)
	}
	return tp, nil
}

// Ports of the test guests' listeners; clear of the stand-in game's
// (2300, 47624) and the status screen's hellos (4243).
const (
	benchUnicastPort   = 4250
	benchBroadcastPort = 4251
)

// runTraffic measures traffic between the guests from inside them (the
// test agent's commands, typed): from the first guest to the second a
// ping series and a UDP burst, timed on the wire by the LAN's capture and
// counted by the receiver; then broadcasts, UDP and raw IPX (EtherType
// 0x8137), counted by every other guest and, for IPX, by the switch's
// per-guest delivery counters. The figures go into all (the guest=all
// row) and the rows it returns.
func runTraffic(ctx context.Context, c *client, tp trafficParams, st lanStatus, all map[string]float64, progress func(float64, string) error) ([]sdk.BenchRow, error) {
	udpCount, udpSize, bcastCount, pings := tp.udpCount, tp.udpSize, tp.bcastCount, tp.pings
	ports := st.Ports
	sort.Slice(ports, func(i, j int) bool { return ports[i].Instance < ports[j].Instance })
	ipv4 := map[string]string{}
	for _, p := range ports {
		for _, ip := range p.IPs {
			if strings.Count(ip, ".") == 3 {
				ipv4[p.Name] = ip
				break
			}
		}
	}
	from, to := ports[0], ports[1]
	if ipv4[to.Name] == "" {
		return nil, fmt.Errorf("the LAN knows no IPv4 address of %s (GET /api/lan-status)", to.Name)
	}
	ag, err := startAgents(ctx, c)
	if err != nil {
		return nil, err
	}
	defer ag.close()
	run := func(i int, cmd string, timeout time.Duration) (string, error) {
		return ag.run(ctx, ports[i].Instance, ports[i].Name, cmd, timeout)
	}
	// each runs fn for every guest at once.
	each := func(first int, fn func(i int) error) error {
		errs := make([]error, len(ports))
		var wg sync.WaitGroup
		for i := first; i < len(ports); i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = fn(i) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// counts reads a counter from every guest but the sender once it
	// stopped growing: the last frames of a burst may still be on their way.
	counts := func(cmd, name string) ([]float64, error) {
		out := make([]float64, len(ports))
		err := each(1, func(i int) error {
			prev := -1.0
			for range 10 {
				r, err := run(i, cmd, time.Minute)
				if err != nil {
					return err
				}
				n, err := field(r, name)
				if err != nil {
					return err
				}
				if n == prev {
					break
				}
				prev = n
				time.Sleep(500 * time.Millisecond)
			}
			out[i] = prev
			return nil
		})
		return out, err
	}
	progress(0, "starting the agents' listeners (commands typed after F8)")
	err = each(0, func(i int) error {
		for _, cmd := range []string{"echo loco-bench", fmt.Sprintf("udp-listen %d", benchUnicastPort), fmt.Sprintf("udp-listen %d", benchBroadcastPort), "raw-listen"} {
			if _, err := run(i, cmd, time.Minute); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	pair := map[string]float64{}
	progress(0.2, fmt.Sprintf("%d pings from %s to %s", pings, from.Name, to.Name))
	r, err := run(0, fmt.Sprintf("icmp-ping %s %d 1000", ipv4[to.Name], pings), time.Duration(pings+60)*time.Second)
	if err != nil {
		return nil, err
	}
	got, err := field(r, "recv")
	if err != nil {
		return nil, err
	}
	pair["ping_loss_fraction"] = 1 - got/float64(pings)
	for _, k := range []string{"p50", "p99", "max"} {
		if pair["ping_"+k+"_ms"], err = field(r, k); err != nil {
			return nil, err
		}
	}

	progress(0.4, fmt.Sprintf("%d UDP datagrams of %d bytes from %s to %s", udpCount, udpSize, from.Name, to.Name))
	before, err := counts(fmt.Sprintf("udp-recv %d", benchUnicastPort), "n")
	if err != nil {
		return nil, err
	}
	rcvbuf0, err := counts("udp-stats", "rcvbuf_errors")
	if err != nil {
		return nil, err
	}
	lan0, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	wire := ag.count(func(f frame) bool { return f.src == from.MAC && f.udpDst == benchUnicastPort })
	r, err = run(0, fmt.Sprintf("udp-send %s %d loco-bench %d %d", ipv4[to.Name], benchUnicastPort, udpCount, udpSize), 5*time.Minute)
	if err != nil {
		return nil, err
	}
	sentMs, err := field(r, "ms")
	if err != nil {
		return nil, err
	}
	after, err := counts(fmt.Sprintf("udp-recv %d", benchUnicastPort), "n")
	if err != nil {
		return nil, err
	}
	lan1, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	rcvbuf1, err := counts("udp-stats", "rcvbuf_errors")
	if err != nil {
		return nil, err
	}
	w := ag.snapshot(wire)
	pps, mbit, ok := w.rate()
	if !ok {
		return nil, fmt.Errorf("the LAN capture saw %d of the %d UDP datagrams from %s", w.frames, udpCount, from.Name)
	}
	pair["udp_sent"] = float64(udpCount)
	pair["udp_size_bytes"] = float64(udpSize)
	pair["udp_on_wire"] = float64(w.frames)
	pair["udp_pkts_per_s"] = pps
	pair["udp_mbit_s"] = mbit
	pair["udp_sender_pkts_per_s"] = float64(udpCount) / (sentMs / 1000)
	pair["udp_delivered"] = after[1] - before[1]
	pair["udp_delivered_fraction"] = (after[1] - before[1]) / float64(udpCount)
	// Where the rest went: the switch's drops over the burst, and the
	// receiving guest's kernel, whose socket buffer overflowed (its
	// RcvbufErrors).
	pair["udp_switch_drops"] = float64(segmentDrops(lan1) - segmentDrops(lan0))
	pair["udp_rcvbuf_errors"] = rcvbuf1[1] - rcvbuf0[1]
	rows := []sdk.BenchRow{{Labels: map[string]string{"from": from.Name, "to": to.Name, "traffic": "unicast"}, Values: pair}}

	progress(0.6, fmt.Sprintf("%d UDP and %d IPX broadcasts from %s", bcastCount, bcastCount, from.Name))
	udpBefore, err := counts(fmt.Sprintf("udp-recv %d", benchBroadcastPort), "n")
	if err != nil {
		return nil, err
	}
	ipxBefore, err := counts("raw-recv 0x8137", "n")
	if err != nil {
		return nil, err
	}
	sw0, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := run(0, fmt.Sprintf("udp-send 255.255.255.255 %d loco-bcast %d", benchBroadcastPort, bcastCount), 5*time.Minute); err != nil {
		return nil, err
	}
	if _, err := run(0, fmt.Sprintf("raw-send 0x8137 broadcast loco-ipx %d", bcastCount), 5*time.Minute); err != nil {
		return nil, err
	}
	udpAfter, err := counts(fmt.Sprintf("udp-recv %d", benchBroadcastPort), "n")
	if err != nil {
		return nil, err
	}
	ipxAfter, err := counts("raw-recv 0x8137", "n")
	if err != nil {
		return nil, err
	}
	sw1, err := c.lan(ctx)
	if err != nil {
		return nil, err
	}
	switchIPX := func(s lanStatus) []float64 {
		out := make([]float64, len(ports))
		for i, port := range ports {
			for _, p := range s.Ports {
				if p.Name == port.Name {
					out[i] = float64(p.TxByEtherType["IPX"].Frames)
				}
			}
		}
		return out
	}
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	rows = append(rows, broadcastRows(names, bcastCount, all,
		[2][]float64{udpBefore, udpAfter}, [2][]float64{ipxBefore, ipxAfter}, [2][]float64{switchIPX(sw0), switchIPX(sw1)})...)
	progress(1, fmt.Sprintf("UDP %.0f datagrams/s, %.1f Mbit/s; broadcasts delivered: UDP %.0f%%, IPX %.0f%%",
		pps, mbit, 100*all["udp_bcast_delivered_fraction"], 100*all["ipx_bcast_delivered_fraction"]))
	return rows, nil
}

// broadcastRows: guest 0 (names[0]) sent count broadcasts of UDP and of
// IPX; udp, ipx and sw are every guest's counters before and after (the
// guests' own counts, the switch's deliveries of IPX to them). A row per
// receiver, and into all the share delivered to all of them.
func broadcastRows(names []string, count int, all map[string]float64, udp, ipx, sw [2][]float64) []sdk.BenchRow {
	var rows []sdk.BenchRow
	var udpGot, ipxGot, swGot float64
	for i := 1; i < len(names); i++ {
		v := map[string]float64{
			"udp_bcast_received":   udp[1][i] - udp[0][i],
			"ipx_bcast_received":   ipx[1][i] - ipx[0][i],
			"ipx_switch_delivered": sw[1][i] - sw[0][i],
		}
		udpGot += v["udp_bcast_received"]
		ipxGot += v["ipx_bcast_received"]
		swGot += v["ipx_switch_delivered"]
		rows = append(rows, sdk.BenchRow{Labels: map[string]string{"from": names[0], "to": names[i], "traffic": "broadcast"}, Values: v})
	}
	want := float64(count * (len(names) - 1))
	all["bcast_sent"] = float64(count)
	all["bcast_peers"] = float64(len(names) - 1)
	all["udp_bcast_delivered_fraction"] = udpGot / want
	all["ipx_bcast_delivered_fraction"] = ipxGot / want
	all["ipx_switch_delivered_fraction"] = swGot / want
	return rows
}

// segmentDrops is every frame the switch dropped (a port's drops are
// among these too).
func segmentDrops(st lanStatus) uint64 {
	var n uint64
	for _, d := range st.Drops {
		n += d
	}
	return n
}
