package lan

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/locolan/loco/sdk"
)

func family(fams []sdk.MetricFamily, name string) *sdk.MetricFamily {
	for i := range fams {
		if fams[i].Name == name {
			return &fams[i]
		}
	}
	return nil
}

func sample(f *sdk.MetricFamily, labels ...string) *sdk.MetricSample {
next:
	for i, s := range f.Samples {
		for j, l := range labels {
			if s.LabelValues[j] != l {
				continue next
			}
		}
		return &f.Samples[i]
	}
	return nil
}

// TestMetrics: a guest that answers ARP and ping shows up with its
// traffic by EtherType, its reachability and its round trips.
func TestMetrics(t *testing.T) {
	raw := defaultRaw()
	raw.DHCP = false
	raw.ProbeInterval = "100ms"
	seg, g := startLAN(t, 2, raw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ip := netip.MustParseAddr("10.87.0.50")
	g[0].send(serialize(t, &layers.Ethernet{SrcMAC: g[0].mac[:], DstMAC: broadcastMAC[:], EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: g[0].mac[:], SourceProtAddress: ip.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: ip.AsSlice()}))
	go respond(ctx, g[0], ip)
	var fams []sdk.MetricFamily
	waitFor(t, "ICMP round trips in the histogram", 10*time.Second, func() bool {
		fams = seg.Metrics()
		s := sample(family(fams, "loco_lan_rtt_seconds"), "t-0")
		return s != nil && s.Count >= 3
	})
	for _, f := range fams {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
	name0 := seg.sw.ports[0].name
	if s := sample(family(fams, "loco_lan_frames_total"), name0, "rx", "ARP"); s == nil || s.Value < 1 {
		t.Errorf("ARP frames from %s: %+v", name0, family(fams, "loco_lan_frames_total"))
	}
	if s := sample(family(fams, "loco_lan_frames_total"), name0, "rx", "IPv4"); s == nil || s.Value < 3 {
		t.Errorf("IPv4 (echo replies) from %s: %+v", name0, s)
	}
	if s := sample(family(fams, "loco_lan_reachable"), name0); s == nil || s.Value != 1 {
		t.Errorf("reachable %s: %+v", name0, s)
	}
	if s := sample(family(fams, "loco_lan_reachable"), seg.sw.ports[1].name); s == nil || s.Value != 0 {
		t.Errorf("the silent guest: %+v", s)
	}
	if s := sample(family(fams, "loco_lan_drops_total"), "queue_full"); s == nil {
		t.Error("drop reasons are not all present before the first drop")
	}
	h := sample(family(fams, "loco_lan_rtt_seconds"), name0)
	t.Logf("%d round trips, mean %.3f ms", h.Count, 1000*h.Sum/float64(h.Count))
	if last := h.BucketCounts[len(h.BucketCounts)-1]; last > h.Count {
		t.Errorf("cumulative buckets exceed the count: %v > %d", h.BucketCounts, h.Count)
	}
}
