package streamer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locolan/loco/internal/proc"
	"github.com/locolan/loco/internal/testenv"
	"github.com/locolan/loco/plugins/stream-webrtc/rfb/rfbtest"
	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// BenchmarkDensity measures what the plugin process costs, as % of one
// core, against fake 800x600 displays (rfbtest, in this process, so the
// displays' own drawing is not counted): one guest watched full or thumb,
// and the 3x3 grid, one guest played full and eight thumbnails, with every
// screen still and then every screen moving (a whole console of new text
// 25 times a second, like the test guest's F10). The plugin is the real
// binary serving plain gRPC (`serve --listen`); the viewers are pion peers
// in this process.
//
//	go test -run '^$' -bench Density -benchtime 1x ./plugins/stream-webrtc/streamer
func BenchmarkDensity(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "loco-plugin-stream-webrtc")
	build := exec.Command("go", "build", "-o", bin, "./plugins/stream-webrtc")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the plugin: %v\n%s", err, out)
	}
	cases := []struct {
		name   string
		guests int
		thumbs int // guests watched as thumbnails; the others full
		moving bool
	}{
		{"one/full/still", 1, 0, false},
		{"one/full/moving", 1, 0, true},
		{"one/thumb/still", 1, 1, false},
		{"one/thumb/moving", 1, 1, true},
		{"grid/still", 9, 8, false},
		{"grid/moving", 9, 8, true},
	}
	// LOCO_BENCH_PLUGIN runs another build of the plugin instead, to
	// compare two builds side by side on the same machine state.
	if x := os.Getenv("LOCO_BENCH_PLUGIN"); x != "" {
		bin = x
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := runDensity(b, bin, c.guests, c.thumbs, c.moving, 10*time.Second)
				b.ReportMetric(r.cpu, "%core")
				b.ReportMetric(r.fullFPS, "full-fps")
				b.ReportMetric(r.fullKbps, "full-kbit/s")
				b.ReportMetric(r.thumbFPS, "thumb-fps")
				b.ReportMetric(r.thumbKbps, "thumb-kbit/s")
			}
		})
	}
}

type densityResult struct {
	cpu                 float64 // % of one core, the plugin process
	fullFPS, fullKbps   float64 // per full viewer
	thumbFPS, thumbKbps float64 // per thumb viewer, averaged
}

func runDensity(b *testing.B, bin string, guests, thumbs int, moving bool, d time.Duration) densityResult {
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Stderr = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Cancel first: it kills the plugin, which Wait then reaps.
	defer func() { cancel(); cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("the plugin printed no address: %v", err)
	}
	conn, err := grpc.NewClient(strings.TrimSpace(addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := sdk.NewClient(conn)
	var ins []sdk.Instance
	var consoles []*rfbtest.Console
	for i := 0; i < guests; i++ {
		sock := filepath.Join(dir, fmt.Sprintf("vnc%d.sock", i))
		fd, err := rfbtest.NewServer(sock, 800, 600)
		if err != nil {
			b.Fatal(err)
		}
		defer fd.Close()
		con := rfbtest.NewConsole(fd, uint64(i))
		con.Step(false)
		consoles = append(consoles, con)
		ins = append(ins, sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("g-%d", i), VNC: "unix:" + sock,
			StateDir: filepath.Join(dir, fmt.Sprintf("g%d", i))})
	}
	if problems, diags := sdktest.Configure(b, c, "audio = false", sdk.Cluster{Name: "bench", Instances: ins}); diags.HasErrors() || len(problems) > 0 {
		b.Fatalf("configure: %v %v", diags, problems)
	}
	var full, thumb []*viewerClient
	for i, in := range ins {
		if _, err := c.Attach(ctx, sdk.KindStream, in); err != nil {
			b.Fatal(err)
		}
		variant := sdk.VariantFull
		if i >= guests-thumbs {
			variant = sdk.VariantThumb
		}
		v, _ := newViewerClient(b, c, uint32(i), variant)
		if variant == sdk.VariantFull {
			full = append(full, v)
		} else {
			thumb = append(thumb, v)
		}
	}
	for _, v := range append(append([]*viewerClient{}, full...), thumb...) {
		waitFor(b, "a first frame at every viewer", time.Minute, func() bool { return v.frames.Load() >= 1 })
	}
	if moving {
		for _, con := range consoles {
			go con.Animate(ctx, 25, false)
		}
	}
	// Encoders warm and the first key frames out. A still screen gets 15 s:
	// after a change x264 keeps refining the picture on every repeat
	// (constant quality: each repeat codes what the last one lost) for
	// about ten repeats, and the steady state is what a still tile costs.
	warm := 2 * time.Second
	if !moving {
		warm = 15 * time.Second
	}
	time.Sleep(warm)
	cpu0, th0, t0 := procCPU(b, cmd.Process.Pid), threadCPU(cmd.Process.Pid), time.Now()
	time.Sleep(d)
	cpu1, th1, el := procCPU(b, cmd.Process.Pid), threadCPU(cmd.Process.Pid), time.Since(t0)
	res := densityResult{cpu: 100 * (cpu1 - cpu0).Seconds() / el.Seconds()}
	rate := func(vs []*viewerClient) (fps, kbps float64) {
		for _, v := range vs {
			fr := v.framesSince(t0)
			var bytes int
			n := 0
			for _, f := range fr {
				if f.at.Before(t0.Add(el)) {
					bytes += f.bytes
					n++
				}
			}
			fps += float64(n) / el.Seconds()
			kbps += float64(bytes) * 8 / 1000 / el.Seconds()
		}
		if len(vs) == 0 {
			return 0, 0
		}
		return fps / float64(len(vs)), kbps / float64(len(vs))
	}
	res.fullFPS, res.fullKbps = rate(full)
	res.thumbFPS, res.thumbKbps = rate(thumb)
	b.Logf("%d guests (%d thumb), moving=%v: plugin %.1f%% of a core; full %.1f fps %.0f kbit/s; thumb %.1f fps %.0f kbit/s",
		guests, thumbs, moving, res.cpu, res.fullFPS, res.fullKbps, res.thumbFPS, res.thumbKbps)
	// Where it goes: GStreamer names each encoder's streaming thread after
	// its appsrc ("in:src": the encoder's work), the Go runtime's threads
	// carry the binary's name (capture, conversion, pion).
	var parts []string
	for name, t := range th1 {
		if d := t - th0[name]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", name, 100*d.Seconds()/el.Seconds()))
		}
	}
	sort.Strings(parts)
	b.Logf("  by thread name: %s", strings.Join(parts, ", "))
	return res
}

// threadCPU sums the CPU time of a process's threads by thread name.
func threadCPU(pid int) map[string]time.Duration {
	out := map[string]time.Duration{}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(raw)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[j+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[s[i+1:j]] += time.Duration(u+st) * time.Second / 100
	}
	return out
}

// procCPU is a process's user+system CPU time so far.
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := proc.Read(pid)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(st.CPUSeconds() * float64(time.Second))
}
