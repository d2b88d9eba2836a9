package streamer

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// viewerClient is a pion peer that offers to receive, as a browser does.
type viewerClient struct {
	pc      *webrtc.PeerConnection
	packets atomic.Int64
	frames  atomic.Int64 // RTP packets with the marker bit: the ends of frames
	track   chan *webrtc.TrackRemote

	mu       sync.Mutex
	sizes    []frameAt // every frame received: when its last packet came, its bytes
	curBytes int
}

type frameAt struct {
	at    time.Time
	bytes int
}

// framesSince returns the frames received after t.
func (v *viewerClient) framesSince(t time.Time) []frameAt {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []frameAt
	for _, f := range v.sizes {
		if f.at.After(t) {
			out = append(out, f)
		}
	}
	return out
}

func newViewerClient(t testing.TB, c *sdk.Client, instance uint32, variant string) (*viewerClient, string) {
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
			v.mu.Lock()
			v.curBytes += len(p.Payload)
			if p.Marker {
				v.sizes = append(v.sizes, frameAt{time.Now(), v.curBytes})
				v.curBytes = 0
			}
			v.mu.Unlock()
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
	answer, session, err := c.Offer(context.Background(), sdk.OfferRequest{Instance: instance, SDP: pc.LocalDescription().SDP, Variant: variant})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	return v, session
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
