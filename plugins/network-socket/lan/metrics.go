package lan

import (
	"context"
	"sort"
	"time"

	"github.com/locolan/loco/sdk"
)

var _ sdk.Metrics = (*Plugin)(nil)

// rttBuckets span a loopback round trip under TCG (~0.2 ms) to a guest
// that is busy booting (a second).
var rttBuckets = sdk.ExponentialBuckets(0.0001, 2.5, 11)

// observeRTT records an ICMP round trip of guest i; ARP replies only stand
// in for the RTT until the first echo and are left out of the histogram.
func (st *station) observeRTT(i int, rtt time.Duration, icmp bool) {
	if icmp && i < len(st.rtt) {
		st.rtt[i].Observe(rtt.Seconds())
	}
}

func (p *Plugin) Metrics(context.Context) ([]sdk.MetricFamily, error) {
	seg, err := p.current()
	if err != nil {
		return nil, err
	}
	return seg.Metrics(), nil
}

// Metrics is the segment's series, read from the same counters as Status.
func (s *Segment) Metrics() []sdk.MetricFamily { return s.MetricsFrom(s.Status()) }

// MetricsFrom is Metrics from a status the caller extended (network-vxlan
// adds its uplinks and their drops).
func (s *Segment) MetricsFrom(st sdk.LANStatus) []sdk.MetricFamily {
	fams := StatusFamilies(st)
	rtt := sdk.MetricFamily{Name: "loco_lan_rtt_seconds", Type: sdk.Histogram, Labels: []string{"guest"},
		Help: "ICMP echo round trips from the segment's prober to each guest."}
	for i, p := range s.sw.ports {
		rtt.AddHistogram(s.st.rtt[i], p.name)
	}
	return append(fams, rtt)
}

// StatusFamilies turns a LAN status into series: what a segment knows
// without its prober's history (network-vxlan adds its uplinks' this way).
func StatusFamilies(st sdk.LANStatus) []sdk.MetricFamily {
	frames := sdk.MetricFamily{Name: "loco_lan_frames_total", Type: sdk.Counter, Labels: []string{"guest", "direction", "ethertype"},
		Help: "Frames on the segment by guest, direction (rx: from the guest, tx: to it) and EtherType."}
	bytes := sdk.MetricFamily{Name: "loco_lan_bytes_total", Type: sdk.Counter, Labels: []string{"guest", "direction", "ethertype"},
		Help: "Bytes of the frames in loco_lan_frames_total."}
	guestDrops := sdk.MetricFamily{Name: "loco_lan_guest_drops_total", Type: sdk.Counter, Labels: []string{"guest"},
		Help: "Frames to or from the guest that the segment discarded."}
	reach := sdk.MetricFamily{Name: "loco_lan_reachable", Type: sdk.Gauge, Labels: []string{"guest"},
		Help: "1 while the guest answers the prober's ARP or ping."}
	link := sdk.MetricFamily{Name: "loco_lan_link_up", Type: sdk.Gauge, Labels: []string{"guest"},
		Help: "1 while the guest has sent a frame within the last three probe rounds."}
	lastRTT := sdk.MetricFamily{Name: "loco_lan_last_rtt_seconds", Type: sdk.Gauge, Labels: []string{"guest"},
		Help: "The prober's last round trip to the guest."}
	for _, p := range st.Ports {
		for dir, m := range map[string]map[string]sdk.Traffic{"rx": p.RxByEtherType, "tx": p.TxByEtherType} {
			for _, et := range sortedKeys(m) {
				frames.Add(float64(m[et].Frames), p.Name, dir, et)
				bytes.Add(float64(m[et].Bytes), p.Name, dir, et)
			}
		}
		guestDrops.Add(float64(p.Drops), p.Name)
		reach.Add(b2f(p.Reachable), p.Name)
		link.Add(b2f(p.LinkUp), p.Name)
		if p.RTTMillis > 0 {
			lastRTT.Add(p.RTTMillis/1000, p.Name)
		}
	}
	drops := sdk.MetricFamily{Name: "loco_lan_drops_total", Type: sdk.Counter, Labels: []string{"reason"},
		Help: "Frames the segment discarded, by reason."}
	// Every reason is present from the start, so rate() sees the first drop.
	reasons := map[string]uint64{}
	for _, r := range dropNames {
		reasons[r] = 0
	}
	for r, n := range st.Drops {
		reasons[r] = n
	}
	for _, r := range sortedKeys(reasons) {
		drops.Add(float64(reasons[r]), r)
	}
	fams := []sdk.MetricFamily{frames, bytes, guestDrops, drops, reach, link, lastRTT}
	if len(st.Uplinks) == 0 {
		return fams
	}
	upFrames := sdk.MetricFamily{Name: "loco_lan_uplink_frames_total", Type: sdk.Counter, Labels: []string{"uplink", "peer", "direction"},
		Help: "Frames carried to (tx) and from (rx) each far end of the segment (peer: its address)."}
	upBytes := sdk.MetricFamily{Name: "loco_lan_uplink_bytes_total", Type: sdk.Counter, Labels: []string{"uplink", "peer", "direction"},
		Help: "Bytes of the frames in loco_lan_uplink_frames_total."}
	upReach := sdk.MetricFamily{Name: "loco_lan_uplink_reachable", Type: sdk.Gauge, Labels: []string{"uplink", "peer"},
		Help: "1 while something arrives from the far end."}
	upRTT := sdk.MetricFamily{Name: "loco_lan_uplink_rtt_seconds", Type: sdk.Gauge, Labels: []string{"uplink", "peer"},
		Help: "The last heartbeat round trip to the far end."}
	for _, u := range st.Uplinks {
		upFrames.Add(float64(u.RxFrames), u.Name, u.Address, "rx")
		upFrames.Add(float64(u.TxFrames), u.Name, u.Address, "tx")
		upBytes.Add(float64(u.RxBytes), u.Name, u.Address, "rx")
		upBytes.Add(float64(u.TxBytes), u.Name, u.Address, "tx")
		upReach.Add(b2f(u.Reachable), u.Name, u.Address)
		if u.RTTMillis > 0 {
			upRTT.Add(u.RTTMillis/1000, u.Name, u.Address)
		}
	}
	return append(fams, upFrames, upBytes, upReach, upRTT)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
