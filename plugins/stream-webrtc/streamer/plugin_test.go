package streamer

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

func TestConfigProblems(t *testing.T) {
	c := sdktest.Start(t, New())
	cases := []struct{ src, attr string }{
		{`codec = "av1"`, "codec"},
		{`framerate = 0`, "framerate"},
		{`bitrate_kbps = 5`, "bitrate_kbps"},
		{`public_ip = "not-an-ip"`, "public_ip"},
		{`udp_ports = "9000"`, "udp_ports"},
		{"ice_server {\n urls = [\"http://x\"]\n}", "ice_server"},
	}
	for _, tc := range cases {
		problems, diags := sdktest.Configure(t, c, tc.src, sdk.Cluster{Name: "t"})
		if diags.HasErrors() {
			t.Errorf("%s: HCL errors %v", tc.src, diags)
			continue
		}
		if len(problems) != 1 || len(problems[0].Path) == 0 || problems[0].Path[0] != tc.attr {
			t.Errorf("%s: problems %+v, want one about %s", tc.src, problems, tc.attr)
		}
	}
	problems, diags := sdktest.Configure(t, c, "codec = \"vp8\"\npublic_ip = \"203.0.113.7\"\nudp_ports = \"50000-50100\"\nice_server {\n urls = [\"stun:stun.example.org:3478\"]\n}", sdk.Cluster{Name: "t"})
	if diags.HasErrors() || len(problems) != 0 {
		t.Errorf("valid block: %v %v", diags, problems)
	}
}

// TestAttachArgs: the audio backend is QEMU's wav driver writing into a FIFO
// the plugin made, and a restarted plugin gives the same arguments.
func TestAttachArgs(t *testing.T) {
	dir := t.TempDir()
	in := sdk.Instance{Index: 0, Name: "t-0", VNC: "unix:" + filepath.Join(dir, "vnc.sock"), StateDir: filepath.Join(dir, "g0")}
	var first []string
	for run := 0; run < 2; run++ {
		p := New()
		c := sdktest.Start(t, p)
		if problems, diags := sdktest.Configure(t, c, ``, sdk.Cluster{Name: "t", Instances: []sdk.Instance{in}}); diags.HasErrors() || len(problems) > 0 {
			t.Fatalf("configure: %v %v", diags, problems)
		}
		args, err := c.Attach(context.Background(), sdk.KindStream, in)
		if err != nil {
			t.Fatal(err)
		}
		want := "wav,id=snd0,path=" + filepath.Join(in.StateDir, "audio.fifo") + ",out.frequency=48000,out.channels=2,out.format=s16"
		if len(args) != 2 || args[0] != "-audiodev" || args[1] != want {
			t.Errorf("args %q", args)
		}
		if run == 0 {
			first = args
		} else if strings.Join(args, " ") != strings.Join(first, " ") {
			t.Errorf("a restarted plugin gave %q, first %q", args, first)
		}
		st, err := os.Stat(filepath.Join(in.StateDir, "audio.fifo"))
		if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("audio.fifo: %v %v", st, err)
		}
		p.cancel()
	}
}

func TestWAVStripper(t *testing.T) {
	header := append([]byte("RIFF\x00\x00\x00\x00WAVEfmt "), make([]byte, 44-16)...)
	pcm := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	stream := append(append(append(append([]byte{}, header...), pcm(400, 1)...), header...), pcm(40, 2)...)
	// Samples that spell RIFF (but are not followed by WAVE) are sound.
	stream = append(stream, []byte("RIFFxxxxNOPE")...)
	want := append(append(append([]byte{}, pcm(400, 1)...), pcm(40, 2)...), []byte("RIFFxxxxNOPE")...)
	for _, chunk := range []int{1, 3, 7, 44, 4096} {
		var w wavStripper
		var got []byte
		for i := 0; i < len(stream); i += chunk {
			got = append(got, w.write(stream[i:min(i+chunk, len(stream))])...)
		}
		got = append(got, w.pending...)
		if !bytes.Equal(got, want) {
			t.Errorf("chunks of %d: got %d bytes %q…, want %d", chunk, len(got), got[:min(20, len(got))], len(want))
		}
	}
}

// TestProxyRefusesOtherProcesses: the rfbsrc proxy forwards a connection
// this process made, and closes one from another process.
func TestProxyRefusesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "vnc.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("RFB 003.008\n"))
		}
	}()
	// Another process: nc is not always there, so use bash's /dev/tcp.
	p, err := newRFBProxy("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, _ := execOutput("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+itoa(p.Port())+"; timeout 2 head -c 12 <&3")
	if strings.Contains(out, "RFB") {
		t.Errorf("another process got the guest's display through the proxy: %q", out)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 12)
	if _, err := c.Read(b); err != nil || string(b) != "RFB 003.008\n" {
		t.Errorf("this process through the proxy: %q %v", b, err)
	}
}

// TestWatcherFollowsResizes: the VNC watcher reports the size at connect
// and every DesktopSize change.
func TestWatcherFollowsResizes(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "vnc.sock")
	f := newFakeVNC(t, sock, 720, 400)
	sizes := make(chan size, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchVNC(ctx, "unix", sock, func(s size) { sizes <- s }, func(error) {})
	want := []size{{720, 400}, {800, 600}}
	for i, w := range want {
		select {
		case got := <-sizes:
			if got != w {
				t.Fatalf("size %d: %v, want %v", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no size %d", i)
		}
		if i == 0 {
			f.waitResizeAware(t)
			f.resize(800, 600)
		}
	}
}

// viewerClient is a pion peer that offers to receive, as a browser does.
type viewerClient struct {
	pc      *webrtc.PeerConnection
	packets atomic.Int64
	frames  atomic.Int64 // RTP packets with the marker bit: the ends of frames
	track   chan *webrtc.TrackRemote
}

func newViewerClient(t *testing.T, c *sdk.Client, instance uint32) (*viewerClient, string) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	v := &viewerClient{pc: pc, track: make(chan *webrtc.TrackRemote, 2)}
	pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		v.track <- tr
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.packets.Add(1)
			if p.Marker {
				v.frames.Add(1)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	answer, session, err := c.Offer(context.Background(), instance, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	return v, session
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStreamFanOut runs the real plugin (GStreamer, x264, pion) against a
// fake VNC display: two viewers of one guest get frames from one encoder, a
// static screen still flows at the frame rate, a PLI yields a key frame, a
// resize rebuilds the pipeline, and hanging up both stops the encoder.
func TestStreamFanOut(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "vnc.sock")
	f := newFakeVNC(t, sock, 320, 240)
	p := New()
	t.Cleanup(p.cancel)
	c := sdktest.Start(t, p)
	in := sdk.Instance{Index: 0, Name: "t-0", VNC: "unix:" + sock, StateDir: filepath.Join(dir, "g0")}
	if problems, diags := sdktest.Configure(t, c, "framerate = 15\naudio = false", sdk.Cluster{Name: "t", Instances: []sdk.Instance{in}}); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", diags, problems)
	}
	if _, err := c.Attach(context.Background(), sdk.KindStream, in); err != nil {
		t.Fatal(err)
	}
	g := p.guests[0]
	a, sessA := newViewerClient(t, c, 0)
	waitFor(t, "frames at viewer A", 30*time.Second, func() bool { return a.frames.Load() > 10 })
	b, sessB := newViewerClient(t, c, 0)
	waitFor(t, "frames at viewer B", 30*time.Second, func() bool { return b.frames.Load() > 10 })

	// The screen has not changed since the first frame, yet frames keep
	// coming at the configured rate: the heartbeat.
	a0 := a.frames.Load()
	time.Sleep(2 * time.Second)
	if n := a.frames.Load() - a0; n < 15 {
		t.Errorf("viewer A got %d frames in 2 s of a static screen at 15 fps", n)
	}
	st, err := c.StreamStats(context.Background())
	if err != nil || len(st) != 1 {
		t.Fatalf("stats %v %v", st, err)
	}
	if st[0].Viewers != 2 || st[0].FPS < 10 || st[0].FramesIn < 1 || st[0].EncodeMs <= 0 {
		t.Errorf("stats %+v", st[0])
	}
	g.mu.Lock()
	pipelines, vncConns := g.st.pipelines, f.connections()
	g.mu.Unlock()
	if pipelines != 1 {
		t.Errorf("%d pipelines started for two viewers of one guest, want 1", pipelines)
	}
	// The watcher and one rfbsrc: a second encoder would be a third client.
	if vncConns != 2 {
		t.Errorf("%d connections to the guest's display, want 2 (watcher and one encoder)", vncConns)
	}

	t.Run("PLI yields a key frame", func(t *testing.T) {
		before := st[0].KeyFrames
		tr := <-a.track
		time.Sleep(300 * time.Millisecond) // past the key-frame rate limit
		if err := a.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a key frame after the PLI", 3*time.Second, func() bool {
			s, _ := c.StreamStats(context.Background())
			return len(s) == 1 && s[0].KeyFrames > before
		})
	})

	t.Run("a changed screen reaches the viewers", func(t *testing.T) {
		in0, _ := c.StreamStats(context.Background())
		f.change(0x00cc0000)
		waitFor(t, "a captured frame after the change", 5*time.Second, func() bool {
			s, _ := c.StreamStats(context.Background())
			return s[0].FramesIn > in0[0].FramesIn
		})
	})

	t.Run("a resize rebuilds the pipeline", func(t *testing.T) {
		f.resize(400, 300)
		waitFor(t, "a second pipeline", 10*time.Second, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.st.pipelines == 2 && g.size == size{400, 300}
		})
		n := b.frames.Load()
		waitFor(t, "frames after the resize", 10*time.Second, func() bool { return b.frames.Load() > n+10 })
	})

	t.Run("hang up", func(t *testing.T) {
		for _, s := range []string{sessA, sessB} {
			if err := c.Hangup(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Hangup(context.Background(), sessA); err == nil {
			t.Error("a second hangup of the same session succeeded")
		}
		s, _ := c.StreamStats(context.Background())
		if s[0].Viewers != 0 {
			t.Errorf("%d viewers after both hung up", s[0].Viewers)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
