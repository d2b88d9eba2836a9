package streamer

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/locolan/loco/plugins/stream-webrtc/rfb/rfbtest"
	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// rig is the real plugin (GStreamer, x264, pion) attached to one fake
// display (rfbtest), reached through the same gRPC client loco uses.
type rig struct {
	p  *plugin
	c  *sdk.Client
	fd *rfbtest.Server
}

func newRig(t testing.TB, w, h int, block string) *rig {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "vnc.sock")
	fd, err := rfbtest.NewServer(sock, w, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	fd.Fill(0x203040)
	p := New()
	t.Cleanup(p.cancel)
	c := sdktest.Start(t, p)
	in := sdk.Instance{Index: 0, Name: "t-0", VNC: "unix:" + sock, StateDir: filepath.Join(dir, "g0")}
	if problems, diags := sdktest.Configure(t, c, block, sdk.Cluster{Name: "t", Instances: []sdk.Instance{in}}); diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("configure: %v %v", diags, problems)
	}
	if _, err := c.Attach(context.Background(), sdk.KindStream, in); err != nil {
		t.Fatal(err)
	}
	return &rig{p: p, c: c, fd: fd}
}

func (r *rig) stats(t testing.TB, variant string) sdk.StreamStats {
	t.Helper()
	st, err := r.c.StreamStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Variant == variant {
			return s
		}
	}
	t.Fatalf("no %s row in %+v", variant, st)
	return sdk.StreamStats{}
}

// TestStillScreenSendsAlmostNothing: once the first picture is out, a still
// screen gets at most one repeat a second, and a change reaches the viewer
// at once.
func TestStillScreenSendsAlmostNothing(t *testing.T) {
	r := newRig(t, 320, 240, "audio = false")
	a, _ := newViewerClient(t, r.c, 0, sdk.VariantFull)
	waitFor(t, "the first frame", 30*time.Second, func() bool { return a.frames.Load() >= 1 })
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	time.Sleep(3 * time.Second)
	still := a.framesSince(t0)
	t.Logf("frames in 3 s of a still screen: %d", len(still))
	if len(still) > 4 {
		t.Errorf("%d frames in 3 s of a still screen, want at most one repeat a second", len(still))
	}
	if len(still) == 0 {
		t.Error("no repeat at all in 3 s: a receiver would take the stream for dead")
	}
	t1 := time.Now()
	r.fd.Fill(0xffffff)
	waitFor(t, "the change at the viewer", 5*time.Second, func() bool {
		for _, f := range a.framesSince(t1) {
			if f.bytes > 200 {
				return true
			}
		}
		return false
	})
	if st := r.stats(t, sdk.VariantFull); st.Repeats == 0 || st.FramesIn < 2 {
		t.Errorf("stats %+v: want repeats and two captured updates", st)
	}
}

// TestVariantsShareEncoders: two viewers of one variant share one encoder
// and one capture connection; a thumb viewer gets at most 400x300; a full
// viewer that joins later (a focus switch) gets a full-size picture at
// once; a PLI yields a key frame; hanging up works.
func TestVariantsShareEncoders(t *testing.T) {
	r := newRig(t, 800, 600, "audio = false")
	g := r.p.guests[0]
	a, sessA := newViewerClient(t, r.c, 0, sdk.VariantThumb)
	b, sessB := newViewerClient(t, r.c, 0, sdk.VariantThumb)
	waitFor(t, "frames at both thumb viewers", 30*time.Second, func() bool { return a.frames.Load() >= 1 && b.frames.Load() >= 1 })
	st := r.stats(t, sdk.VariantThumb)
	if st.Viewers != 2 || st.Width > 400 || st.Height > 300 || st.Width == 0 {
		t.Errorf("thumb stats %+v: want 2 viewers at most 400x300", st)
	}
	g.mu.Lock()
	encoders := g.thumb.st.encoders
	g.mu.Unlock()
	if encoders != 1 || r.fd.Connections() != 1 {
		t.Errorf("%d thumb encoders and %d display connections for two viewers, want 1 and 1", encoders, r.fd.Connections())
	}
	if d := r.fd.OpenDepths(); !slices.Equal(d, []int{16}) {
		t.Errorf("open display connections at %v bits, want one at 16 for thumbnails only", d)
	}

	t0 := time.Now()
	f, sessF := newViewerClient(t, r.c, 0, sdk.VariantFull)
	waitFor(t, "a frame for the full viewer", 30*time.Second, func() bool { return f.frames.Load() >= 1 })
	t.Logf("focus switch: first full-size frame %v after the offer", time.Since(t0))
	if st := r.stats(t, sdk.VariantFull); st.Width != 800 || st.Height != 600 {
		t.Errorf("full stats %+v: want 800x600", st)
	}
	// The full viewer gets the guest's own colours: capture is dialled
	// again at 32 bits, and stays one connection for both variants.
	waitFor(t, "one display connection at 32 bits", 10*time.Second, func() bool {
		return slices.Equal(r.fd.OpenDepths(), []int{32})
	})

	t.Run("PLI yields a key frame", func(t *testing.T) {
		before := r.stats(t, sdk.VariantFull).KeyFrames
		tr := <-f.track
		time.Sleep(300 * time.Millisecond) // past the key-frame rate limit
		if err := f.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a key frame after the PLI", 5*time.Second, func() bool {
			return r.stats(t, sdk.VariantFull).KeyFrames > before
		})
	})

	t.Run("without a full viewer capture goes back to 16 bits", func(t *testing.T) {
		if err := r.c.Hangup(context.Background(), sessF); err != nil {
			t.Fatal(err)
		}
		// The variant lingers, warm for a focus switch back.
		g.mu.Lock()
		g.full.idleFrom = time.Now().Add(-linger)
		g.mu.Unlock()
		g.full.poke()
		waitFor(t, "the full encoder to stop", 10*time.Second, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return !g.full.running
		})
		// The depth changes between two updates: the next one after a change.
		r.fd.Fill(0x224466)
		waitFor(t, "one display connection at 16 bits", 10*time.Second, func() bool {
			return slices.Equal(r.fd.OpenDepths(), []int{16})
		})
		back, sessBack := newViewerClient(t, r.c, 0, sdk.VariantFull)
		waitFor(t, "a frame for the full viewer back", 30*time.Second, func() bool { return back.frames.Load() >= 1 })
		waitFor(t, "one display connection at 32 bits again", 10*time.Second, func() bool {
			return slices.Equal(r.fd.OpenDepths(), []int{32})
		})
		if err := r.c.Hangup(context.Background(), sessBack); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("hang up", func(t *testing.T) {
		for _, s := range []string{sessA, sessB} { // sessF hung up above
			if err := r.c.Hangup(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.c.Hangup(context.Background(), sessA); err == nil {
			t.Error("a second hangup of the same session succeeded")
		}
		if st := r.stats(t, sdk.VariantThumb); st.Viewers != 0 {
			t.Errorf("%d viewers after all hung up", st.Viewers)
		}
	})
}

// TestResizeMidStream: a guest going from BIOS text (720x400) to 800x600
// keeps streaming in both variants at the new sizes.
func TestResizeMidStream(t *testing.T) {
	r := newRig(t, 720, 400, "audio = false")
	full, _ := newViewerClient(t, r.c, 0, sdk.VariantFull)
	thumb, _ := newViewerClient(t, r.c, 0, sdk.VariantThumb)
	waitFor(t, "frames in both variants", 30*time.Second, func() bool { return full.frames.Load() >= 1 && thumb.frames.Load() >= 1 })
	if st := r.stats(t, sdk.VariantThumb); st.Width != 400 || st.Height != 222 {
		t.Errorf("thumb of 720x400 is %dx%d, want 400x222", st.Width, st.Height)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.fd.WaitResizeAware(ctx); err != nil {
		t.Fatal(err)
	}
	r.fd.Resize(800, 600)
	r.fd.Fill(0x00ff00)
	waitFor(t, "both encoders at the new size", 15*time.Second, func() bool {
		f, th := r.stats(t, sdk.VariantFull), r.stats(t, sdk.VariantThumb)
		return f.Width == 800 && f.Height == 600 && th.Width == 400 && th.Height == 300
	})
	nf, nt := full.frames.Load(), thumb.frames.Load()
	r.fd.Fill(0x0000ff)
	waitFor(t, "frames after the resize", 10*time.Second, func() bool { return full.frames.Load() > nf && thumb.frames.Load() > nt })
}

func TestOfferRejectsAnUnknownVariant(t *testing.T) {
	r := newRig(t, 64, 48, "audio = false")
	_, _, err := r.c.Offer(context.Background(), sdk.OfferRequest{Instance: 0, SDP: "v=0", Variant: "huge"})
	if err == nil {
		t.Fatal("an unknown variant was accepted")
	}
	_, _, err = r.c.Offer(context.Background(), sdk.OfferRequest{Instance: 7, SDP: "v=0"})
	if err == nil {
		t.Fatal("an offer for a guest that is not attached was accepted")
	}
}

// TestUnconnectedOffersFreeTheirSlots: maxViewersPerGuest offers whose
// clients never connect fill the guest's slots only until connectTimeout;
// then a real viewer gets in. Before, they held them for ~30 s.
func TestUnconnectedOffersFreeTheirSlots(t *testing.T) {
	r := newRig(t, 320, 240, "audio = false")
	offer := func() error {
		pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		o, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		// The answer is never applied: this client never connects.
		_, _, err = r.c.Offer(context.Background(), sdk.OfferRequest{Instance: 0, SDP: o.SDP})
		return err
	}
	for i := range maxViewersPerGuest {
		if err := offer(); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
	}
	if err := offer(); !errors.Is(err, sdk.ErrBusy) {
		t.Fatalf("offer %d: %v, want ErrBusy", maxViewersPerGuest+1, err)
	}
	start := time.Now()
	limit := connectTimeout(config{})
	waitFor(t, "the unconnected viewers to leave", 4*limit, func() bool { return r.stats(t, sdk.VariantFull).Viewers == 0 })
	t.Logf("%d unconnected viewers gone %v after the last offer (connectTimeout %v)", maxViewersPerGuest, time.Since(start), limit)
	v, _ := newViewerClient(t, r.c, 0, sdk.VariantFull)
	waitFor(t, "frames for the real viewer", time.Minute, func() bool { return v.frames.Load() > 0 })
}

// TestMetrics: a watched guest's variant reports its frames, viewers, key
// frames and an encode-time histogram with an observation per frame.
func TestMetrics(t *testing.T) {
	r := newRig(t, 320, 240, "audio = false")
	a, _ := newViewerClient(t, r.c, 0, sdk.VariantFull)
	waitFor(t, "frames", 30*time.Second, func() bool { return a.frames.Load() >= 2 })
	r.fd.Fill(0xffffff)
	waitFor(t, "a second picture", 10*time.Second, func() bool { return r.stats(t, sdk.VariantFull).FramesOut >= 3 })
	fams, err := r.c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sdk.MetricSample{}
	for _, f := range fams {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
		for _, s := range f.Samples {
			got[f.Name+"/"+strings.Join(s.LabelValues, "/")] = s
		}
	}
	st := r.stats(t, sdk.VariantFull)
	if v := got["loco_stream_viewers/t-0/full"].Value; v != 1 {
		t.Errorf("viewers %v", v)
	}
	if v := got["loco_stream_viewers/t-0/thumb"].Value; v != 0 {
		t.Errorf("thumb viewers %v", v)
	}
	if v := got["loco_stream_frames_total/t-0/full"].Value; v < 3 {
		t.Errorf("frames %v", v)
	}
	if v := got["loco_stream_key_frames_total/t-0/full"].Value; v < 1 {
		t.Errorf("key frames %v", v)
	}
	h := got["loco_stream_encode_seconds/t-0/full"]
	// Every frame sent was encoded; the encoder may be a frame ahead.
	if h.Count < 2 || float64(h.Count) < float64(st.FramesOut)-2 || h.Sum <= 0 {
		t.Errorf("encode histogram: %d observations, sum %v, for %d frames out", h.Count, h.Sum, st.FramesOut)
	}
	t.Logf("encode: %d frames, mean %.2f ms (stats say %.2f ms)", h.Count, 1000*h.Sum/float64(h.Count), st.EncodeMs)
}
