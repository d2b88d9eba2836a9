package scenarios

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/locolan/loco/core/bench/threshold"
	"github.com/locolan/loco/sdk"
)

func TestPercentileAndSummary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []float64
		want    map[string]float64
	}{
		{"one", []float64{7}, map[string]float64{"x_p50_ms": 7, "x_p95_ms": 7, "x_max_ms": 7, "x_mean_ms": 7}},
		{"unsorted", []float64{4, 1, 3, 2}, map[string]float64{"x_p50_ms": 2.5, "x_p95_ms": 3.85, "x_max_ms": 4, "x_mean_ms": 2.5}},
		{"interpolated", []float64{0, 10}, map[string]float64{"x_p50_ms": 5, "x_p95_ms": 9.5, "x_max_ms": 10, "x_mean_ms": 5}},
		{"none", nil, map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]float64{}
			summary(got, "x", "ms", tc.samples)
			if len(got) != len(tc.want) {
				t.Fatalf("summary = %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if math.Abs(got[k]-w) > 1e-9 {
					t.Errorf("%s = %v, want %v", k, got[k], w)
				}
			}
		})
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestParams(t *testing.T) {
	req := func(kv ...string) sdk.RunRequest {
		p := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return sdk.RunRequest{Params: p}
	}
	for _, tc := range []struct {
		name    string
		req     sdk.RunRequest
		want    trafficParams
		wantErr string
	}{
		{"defaults", req(), trafficParams{udpCount: 2000, udpSize: 1000, bcastCount: 100, pings: 50}, ""},
		{"off", req("traffic", "off"), trafficParams{off: true, udpCount: 2000, udpSize: 1000, bcastCount: 100, pings: 50}, ""},
		{"on and counts", req("traffic", "on", "udp_count", "500", "udp_size", "64", "bcast_count", "10", "pings", "5"),
			trafficParams{udpCount: 500, udpSize: 64, bcastCount: 10, pings: 5}, ""},
		{"bad traffic", req("traffic", "maybe"), trafficParams{}, `--param traffic="maybe": on or off`},
		{"not a number", req("pings", "many"), trafficParams{}, `--param pings="many": give a positive number`},
		{"zero", req("udp_count", "0"), trafficParams{}, `--param udp_count="0": give a positive number`},
		{"not whole", req("udp_count", "2.5"), trafficParams{}, `--param udp_count=2.5: a whole number up to 100000`},
		{"too big a datagram", req("udp_size", "9000"), trafficParams{}, `--param udp_size=9000: a whole number up to 1472, at least 10`},
		{"too small a datagram", req("udp_size", "4"), trafficParams{}, `--param udp_size=4: a whole number up to 1472, at least 10`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTrafficParams(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, sdk.ErrInvalid) {
					t.Fatalf("err = %v, want %q (ErrInvalid)", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		screen  string
		moving  bool
		wantErr bool
	}{{"", false, false}, {"still", false, false}, {"moving", true, false}, {"spinning", false, true}} {
		moving, err := screenParam(req("screen", tc.screen))
		if moving != tc.moving || (err != nil) != tc.wantErr {
			t.Errorf("screen=%q: %v, %v", tc.screen, moving, err)
		}
	}
}

// udpFrame builds an Ethernet frame with IPv4 and UDP headers.
func udpFrame(dstPort int, payload string, pad int, fragOffset uint16) []byte {
	eth := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, 17
	binary.BigEndian.PutUint16(ip[6:8], fragOffset)
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[2:4], uint16(dstPort))
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(payload)))
	f := append(append(append(eth, ip...), udp...), payload...)
	return append(f, make([]byte, pad)...)
}

func TestParseFrame(t *testing.T) {
	at := time.Unix(1700000000, 0)
	ipx := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 2, 0x81, 0x37}, "loco-ipx"...)
	for _, tc := range []struct {
		name    string
		b       []byte
		ok      bool
		ethType uint16
		udpDst  int
		payload string
	}{
		{"UDP", udpFrame(4245, "LOCO-REPLY pc1 1\techo x\tOK x", 0, 0), true, 0x0800, 4245, "LOCO-REPLY pc1 1\techo x\tOK x"},
		{"UDP with Ethernet padding", udpFrame(4250, "ab", 18, 0), true, 0x0800, 4250, "ab"},
		{"a later fragment", udpFrame(4250, "ab", 0, 185), true, 0x0800, 0, ""},
		{"IPX", ipx, true, 0x8137, 0, ""},
		{"too short", []byte{1, 2, 3}, false, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := parseFrame(at, len(tc.b), tc.b)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if f.ethType != tc.ethType || f.udpDst != tc.udpDst || string(f.payload) != tc.payload || f.size != len(tc.b) || !f.at.Equal(at) {
				t.Errorf("frame = %+v", f)
			}
			if f.dst != "ff:ff:ff:ff:ff:ff" || !strings.HasPrefix(f.src, "52:54:00:00:00:0") {
				t.Errorf("addresses %s -> %s", f.src, f.dst)
			}
		})
	}
}

func TestParseReplyAndField(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want agentReply
	}{
		{"LOCO-REPLY pc1 3\tudp-recv 4250\tOK n=12 10.0.0.1=x", true, agentReply{guest: "pc1", seq: 3, line: "udp-recv 4250", reply: "OK n=12 10.0.0.1=x"}},
		{"LOCO-REPLY demo-1 10\t\tERR empty command", true, agentReply{guest: "demo-1", seq: 10, line: "", reply: "ERR empty command"}},
		{"LOCO-REPLY pc1 x\tping\tOK pong", false, agentReply{}},
		{"LOCO-REPLY pc1 1 ping OK pong", false, agentReply{}},
		{"LOCO-HELLO pc1", false, agentReply{}},
	} {
		got, ok := parseReply([]byte(tc.in))
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseReply(%q) = %+v, %v", tc.in, got, ok)
		}
	}
	reply := "sent=50 recv=49 from=10.87.0.11:49 min=0.512 p50=1.020 p99=5.180 max=7.000"
	for _, tc := range []struct {
		name    string
		want    float64
		wantErr string
	}{{"recv", 49, ""}, {"p99", 5.18, ""}, {"sent", 50, ""}, {"loss", 0, "has no loss="}, {"from", 0, "is not a number"}} {
		v, err := field(reply, tc.name)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("field %s: %v, want %q", tc.name, err, tc.wantErr)
			}
		} else if err != nil || v != tc.want {
			t.Errorf("field %s = %v, %v", tc.name, v, err)
		}
	}
}

func TestTallyRate(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name      string
		frames    int
		gap       time.Duration
		size      int
		pps, mbit float64
		ok        bool
	}{
		{"1000 frames 1 ms apart", 1001, time.Millisecond, 1042, 1000, 8.336, true},
		{"one frame", 1, time.Millisecond, 100, 0, 0, false},
		{"no time between", 5, 0, 100, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ta tally
			for i := range tc.frames {
				ta.add(frame{at: t0.Add(time.Duration(i) * tc.gap), size: tc.size})
			}
			pps, mbit, ok := ta.rate()
			if ok != tc.ok || math.Abs(pps-tc.pps) > 1e-6 || math.Abs(mbit-tc.mbit) > 1e-6 {
				t.Errorf("rate = %v pps, %v Mbit/s, %v; want %v, %v, %v", pps, mbit, ok, tc.pps, tc.mbit, tc.ok)
			}
		})
	}
}

func TestBroadcastRows(t *testing.T) {
	names := []string{"demo-0", "demo-1", "demo-2"}
	for _, tc := range []struct {
		name         string
		udp, ipx, sw [2][]float64
		udpF, ipxF   float64
		swF          float64
		peerIPX      []float64
	}{
		{"all delivered", [2][]float64{{0, 5, 5}, {0, 105, 105}}, [2][]float64{{0, 0, 0}, {0, 100, 100}}, [2][]float64{{0, 3, 3}, {0, 103, 103}}, 1, 1, 1, []float64{100, 100}},
		{"a guest lost some", [2][]float64{{0, 0, 0}, {0, 100, 50}}, [2][]float64{{0, 0, 0}, {0, 100, 90}}, [2][]float64{{0, 0, 0}, {0, 100, 100}}, 0.75, 0.95, 1, []float64{100, 90}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := map[string]float64{}
			rows := broadcastRows(names, 100, all, tc.udp, tc.ipx, tc.sw)
			if len(rows) != 2 || all["bcast_peers"] != 2 || all["bcast_sent"] != 100 {
				t.Fatalf("rows %v, all %v", rows, all)
			}
			for i, r := range rows {
				if r.Labels["from"] != "demo-0" || r.Labels["to"] != names[i+1] || r.Labels["traffic"] != "broadcast" || r.Values["ipx_bcast_received"] != tc.peerIPX[i] {
					t.Errorf("row %d: %+v", i, r)
				}
			}
			if all["udp_bcast_delivered_fraction"] != tc.udpF || all["ipx_bcast_delivered_fraction"] != tc.ipxF || all["ipx_switch_delivered_fraction"] != tc.swF {
				t.Errorf("all = %v", all)
			}
		})
	}
}

const scrape0 = `# TYPE loco_guest_cpu_seconds_total counter
loco_guest_cpu_seconds_total{guest="demo-0"} 10
loco_guest_cpu_seconds_total{guest="demo-1"} 20
# TYPE loco_guest_memory_rss_bytes gauge
loco_guest_memory_rss_bytes{guest="demo-0"} 2.097152e+08
loco_guest_memory_rss_bytes{guest="demo-1"} 2.097152e+08
# TYPE loco_plugin_cpu_seconds_total counter
loco_plugin_cpu_seconds_total{kind="stream",plugin="webrtc"} 1
# TYPE loco_plugin_memory_rss_bytes gauge
loco_plugin_memory_rss_bytes{kind="stream",plugin="webrtc"} 5.24288e+07
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 3
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.048576e+08
`

// scrape1 is 10 s later: guest 0 used half a core, guest 1 a fifth, the
// plugin a tenth, loco a twentieth.
var scrape1 = strings.NewReplacer(`"demo-0"} 10`, `"demo-0"} 15`, `"demo-1"} 20`, `"demo-1"} 22`,
	`plugin="webrtc"} 1`, `plugin="webrtc"} 2`, "process_cpu_seconds_total 3", "process_cpu_seconds_total 3.5").Replace(scrape0)

func TestDensityRows(t *testing.T) {
	parse := func(s string) map[string]*dto.MetricFamily {
		p := expfmt.NewTextParser(model.LegacyValidation)
		f, err := p.TextToMetricFamilies(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	m0, m1 := parse(scrape0), parse(scrape1)
	for _, tc := range []struct {
		name    string
		fps     []tileFPS
		watched bool
		moving  bool
		screen  string
		tiles   int
		want    map[string]float64 // of the guest=all row
	}{
		{"no dashboard", nil, false, false, "still", 0, map[string]float64{"cpu_pct_per_guest": 35, "rss_mib_per_guest": 200, "plugins_cpu_pct": 10, "total_cpu_pct": 85}},
		{"the dashboard, moving", []tileFPS{{"demo-0", 9.5}, {"demo-1", 8.5}}, true, true, "moving", 2,
			map[string]float64{"guests_cpu_pct": 70, "tile_min_fps": 8.5, "tile_mean_fps": 9, "tile_max_fps": 9.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := densityRows(m0, m1, 10, tc.fps, tc.watched, tc.moving)
			if err != nil {
				t.Fatal(err)
			}
			var all map[string]float64
			tiles := 0
			byLabel := map[string]float64{}
			for _, r := range rows {
				switch {
				case r.Labels["guest"] == "all":
					all = r.Values
					if r.Labels["screen"] != tc.screen {
						t.Errorf("screen %q", r.Labels["screen"])
					}
				case r.Labels["tile"] != "":
					tiles++
				case r.Labels["guest"] != "":
					byLabel[r.Labels["guest"]] = r.Values["cpu_pct"]
				case r.Labels["plugin"] != "":
					byLabel[r.Labels["plugin"]] = r.Values["cpu_pct"]
				case r.Labels["process"] == "loco":
					byLabel["loco"] = r.Values["cpu_pct"]
				}
			}
			if tiles != tc.tiles {
				t.Errorf("%d tile rows, want %d", tiles, tc.tiles)
			}
			for k, w := range map[string]float64{"demo-0": 50, "demo-1": 20, "stream-webrtc": 10, "loco": 5} {
				if math.Abs(byLabel[k]-w) > 1e-9 {
					t.Errorf("%s cpu_pct = %v, want %v", k, byLabel[k], w)
				}
			}
			for k, w := range tc.want {
				if math.Abs(all[k]-w) > 1e-9 {
					t.Errorf("%s = %v, want %v (%v)", k, all[k], w, all)
				}
			}
		})
	}
	if _, err := densityRows(parse(""), parse(""), 10, nil, false, false); err == nil {
		t.Error("no guests in /metrics is not an error")
	}
}

// TestColumnsAreThresholds: every figure a scenario reports can be named
// in a threshold, and carries its unit (or is a count or a share).
func TestColumnsAreThresholds(t *testing.T) {
	all := map[string]float64{}
	broadcastRows([]string{"a", "b"}, 1, all, [2][]float64{{0, 0}, {1, 1}}, [2][]float64{{0, 0}, {1, 1}}, [2][]float64{{0, 0}, {1, 1}})
	summary(all, "rtt", "ms", []float64{1})
	summary(all, "tile", "fps", []float64{1})
	cols := []string{"udp_pkts_per_s", "udp_mbit_s", "udp_sender_pkts_per_s", "udp_delivered_fraction", "udp_delivered", "udp_sent",
		"udp_on_wire", "udp_size_bytes", "udp_switch_drops", "udp_rcvbuf_errors", "ping_p50_ms", "ping_p99_ms", "ping_max_ms", "ping_loss_fraction", "tile_fps", "tile_min_fps"}
	for k := range all {
		cols = append(cols, k)
	}
	units := []string{"_ms", "_s", "_fps", "_fraction", "_pct", "_mib", "_bytes", "_received", "_delivered", "_sent", "_wire", "_peers", "_drops", "_errors"}
	for _, c := range cols {
		r, err := threshold.Parse(c + " >= 0")
		if err != nil || r.Metric != c {
			t.Errorf("%s: %v", c, err)
		}
		if !slices.ContainsFunc(units, func(u string) bool { return strings.HasSuffix(c, u) }) {
			t.Errorf("%s names no unit", c)
		}
	}
}

func TestScenarioList(t *testing.T) {
	p := New()
	list, err := p.Scenarios(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
		if s.Description == "" {
			t.Errorf("%s has no description", s.Name)
		}
	}
	if want := []string{"boot", "lan", "density", "input-latency", "glass-to-glass"}; !slices.Equal(names, want) {
		t.Errorf("scenarios %v, want %v", names, want)
	}
	_, err = p.Run(context.Background(), sdk.RunRequest{Scenario: "warp"}, func(float64, string) error { return nil })
	if !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("unknown scenario: %v", err)
	}
}
