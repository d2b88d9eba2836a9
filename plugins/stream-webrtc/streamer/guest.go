package streamer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/sdk"
)

// Timings of a guest's stream.
const (
	// linger keeps the encoder running this long after the last viewer
	// left, so a reconnecting dashboard (a reload, a dropped stream) finds
	// it warm.
	linger = 10 * time.Second
	// resizeSettle waits for a burst of mode changes (a BIOS, then a
	// kernel, then a desktop) to end before rebuilding the pipeline.
	resizeSettle = 300 * time.Millisecond
	// keyFrameGap rate-limits forced key frames: a burst of PLIs from
	// several viewers needs only one.
	keyFrameGap = 250 * time.Millisecond
)

// guest is one guest's stream: a VNC watcher that knows the display size,
// one encoder pipeline while anyone watches, and the shared tracks every
// viewer's connection sends.
type guest struct {
	p       *plugin
	in      sdk.Instance
	network string // the guest's VNC display
	addr    string
	video   *webrtc.TrackLocalStaticSample
	audio   *webrtc.TrackLocalStaticSample
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{} // something the run loop waits for changed
	keyReq  chan struct{}

	mu       sync.Mutex
	viewers  map[string]*viewer
	idleFrom time.Time // when the last viewer left
	vncUp    bool
	size     size
	sizeGen  uint64 // bumped on every (re)connect and resize
	sizeAt   time.Time
	lastKey  time.Time
	st       streamCounters
}

// streamCounters feed the Stats RPC.
type streamCounters struct {
	framesIn    uint64 // frames captured from the display, over all pipelines
	prevIn      uint64 // framesIn of the pipelines that ended
	framesOut   uint64
	keyFrames   uint64
	encodeTotal time.Duration
	encodeN     uint64
	prevEncT    time.Duration
	prevEncN    uint64
	pipelines   uint64
	window      []frameMark // last 2 s of sent frames, for fps and bitrate
}

type frameMark struct {
	at    time.Time
	bytes int
}

const statsWindow = 2 * time.Second

// newGuest is called with p.mu held: it must not call p.config.
func newGuest(p *plugin, cfg config, in sdk.Instance, network, addr string) (*guest, error) {
	// Video and audio go out as two streams (two msids), not one: a
	// browser lip-syncs the tracks of one stream, and may hold video frames
	// back to match the audio's deeper jitter buffer. For a game, a picture
	// that keeps up with the keys matters more.
	video, err := webrtc.NewTrackLocalStaticSample(videoCapability(cfg.codec), "video", "loco-"+in.Name+"-video")
	if err != nil {
		return nil, fmt.Errorf("guest %s: creating the video track: %w", in.Name, err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(audioCapability(), "audio", "loco-"+in.Name+"-audio")
	if err != nil {
		return nil, fmt.Errorf("guest %s: creating the audio track: %w", in.Name, err)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	g := &guest{p: p, in: in, network: network, addr: addr, video: video, audio: audio, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), keyReq: make(chan struct{}, 1), viewers: map[string]*viewer{}}
	go watchVNC(ctx, network, addr, g.onSize, g.onVNCDown)
	return g, nil
}

func (g *guest) stop() { g.cancel() }

func (g *guest) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *guest) onSize(s size) {
	g.mu.Lock()
	if !g.vncUp || s != g.size {
		logger.Info("guest display", "guest", g.in.Name, "size", s.String())
		g.size = s
		g.sizeGen++
		g.sizeAt = time.Now()
	}
	g.vncUp = true
	g.mu.Unlock()
	g.poke()
}

func (g *guest) onVNCDown(err error) {
	g.mu.Lock()
	was := g.vncUp
	g.vncUp = false
	g.mu.Unlock()
	if was {
		logger.Info("guest display gone", "guest", g.in.Name, "err", err)
	}
	g.poke()
}

func (g *guest) addViewer(v *viewer) {
	g.mu.Lock()
	g.viewers[v.id] = v
	g.mu.Unlock()
	g.poke()
}

func (g *guest) removeViewer(v *viewer) {
	g.mu.Lock()
	delete(g.viewers, v.id)
	if len(g.viewers) == 0 {
		g.idleFrom = time.Now()
	}
	g.mu.Unlock()
	g.poke()
}

func (g *guest) viewerCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.viewers)
}

// requestKeyFrame asks the running encoder for a key frame (a viewer's PLI
// or FIR, or a viewer that just connected).
func (g *guest) requestKeyFrame() {
	select {
	case g.keyReq <- struct{}{}:
	default:
	}
}

// wanted says whether an encoder should run now, and for which display.
func (g *guest) wanted() (bool, size, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	watched := len(g.viewers) > 0 || (!g.idleFrom.IsZero() && time.Since(g.idleFrom) < linger)
	settled := time.Since(g.sizeAt) >= resizeSettle
	return watched && g.vncUp && settled && g.size.W > 0 && g.size.H > 0, g.size, g.sizeGen
}

// run starts and stops the encoder pipeline as viewers come and go and the
// display changes, for as long as the guest is attached.
func (g *guest) run() {
	backoff := time.Duration(0)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.wake:
		case <-tick.C:
		}
		ok, sz, gen := g.wanted()
		if !ok {
			continue
		}
		started := time.Now()
		err := g.stream(sz, gen)
		if g.ctx.Err() != nil {
			return
		}
		if err == nil || time.Since(started) > 10*time.Second {
			backoff = 0
		}
		if err != nil {
			logger.Warn("stream pipeline failed; rebuilding", "guest", g.in.Name, "err", err, "in", backoff)
			select {
			case <-g.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(max(2*backoff, 250*time.Millisecond), 5*time.Second)
		}
	}
}

// stream runs one pipeline for display size sz until it is no longer
// wanted (no viewers for a while, a resize, the display gone) or fails.
func (g *guest) stream(sz size, gen uint64) error {
	cfg, _ := g.p.config()
	proxy, err := newRFBProxy(g.network, g.addr)
	if err != nil {
		return err
	}
	pl, err := gst.Launch(videoPipeline(cfg, proxy.Port(), sz))
	if err != nil {
		proxy.Close()
		return err
	}
	done := make(chan struct{})
	defer func() {
		close(done)
		in := pl.FramesIn()
		encT, encN := pl.EncodeTime()
		// Cut rfbsrc's connection first: its thread is blocked reading it,
		// and the pipeline can only stop once that read returns.
		proxy.Close()
		pl.Close()
		g.mu.Lock()
		g.st.prevIn += in
		g.st.framesIn = g.st.prevIn
		g.st.prevEncT += encT
		g.st.prevEncN += encN
		g.mu.Unlock()
	}()
	if err := pl.Start(); err != nil {
		_, msg := pl.Bus(time.Second)
		return fmt.Errorf("%w: %s", err, msg)
	}
	g.mu.Lock()
	g.st.pipelines++
	n := g.st.pipelines
	g.mu.Unlock()
	logger.Info("encoder started", "guest", g.in.Name, "size", sz.String(), "codec", cfg.codec, "encoders_started", n)

	failed := make(chan error, 3)
	go func() { failed <- g.pump(pl, cfg.framerate, done) }()
	go func() { failed <- heartbeat(pl, cfg.framerate, done) }()
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			switch kind, msg := pl.Bus(200 * time.Millisecond); kind {
			case gst.BusError:
				failed <- errors.New(msg)
				return
			case gst.BusEOS:
				failed <- fmt.Errorf("the pipeline ended: %s", msg)
				return
			case gst.BusWarning:
				logger.Debug("GStreamer warning", "guest", g.in.Name, "msg", msg)
			}
		}
	}()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return nil
		case err := <-failed:
			return err
		case <-g.keyReq:
			g.mu.Lock()
			ok := time.Since(g.lastKey) >= keyFrameGap
			if ok {
				g.lastKey = time.Now()
			}
			g.mu.Unlock()
			if ok {
				pl.ForceKeyUnit()
			} else {
				// Too soon after the last one; try again shortly.
				time.AfterFunc(keyFrameGap, g.requestKeyFrame)
			}
		case <-g.wake:
		case <-tick.C:
		}
		g.mu.Lock()
		g.st.framesIn = g.st.prevIn + pl.FramesIn()
		g.st.encodeTotal, g.st.encodeN = pl.EncodeTime()
		g.st.encodeTotal += g.st.prevEncT
		g.st.encodeN += g.st.prevEncN
		idle := len(g.viewers) == 0 && time.Since(g.idleFrom) >= linger
		resized := g.sizeGen != gen
		down := !g.vncUp
		g.mu.Unlock()
		switch {
		case idle:
			logger.Info("encoder stopped: nobody watches", "guest", g.in.Name)
			return nil
		case down:
			return errors.New("the guest's display went away")
		case resized:
			logger.Info("display resized; rebuilding the pipeline", "guest", g.in.Name)
			return nil
		}
	}
}

// heartbeat feeds the encoder: every captured frame at once, and the last
// one again whenever the screen stays still. The first repeat comes two
// frame intervals after a new frame, later ones one interval apart: a
// screen that changes at any steady rate below the frame rate (an
// animation at 25 fps) is sent at its own rate, not with a repeat wedged
// between every two frames.
func heartbeat(pl *gst.Pipeline, fps int, done <-chan struct{}) error {
	frame := time.Second / time.Duration(fps)
	next := time.Now()
	for {
		select {
		case <-done:
			return nil
		default:
		}
		fresh, err := pl.Relay(max(time.Until(next), 0))
		if err != nil {
			if errors.Is(err, gst.ErrClosed) {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the guest's display closed the connection")
			}
			return err
		}
		if fresh {
			next = time.Now().Add(2 * frame)
		} else {
			// Ticks missed while the machine was busy are not made up.
			if next = next.Add(frame); next.Before(time.Now()) {
				next = time.Now()
			}
		}
	}
}

// pump moves encoded frames from the pipeline to the shared video track,
// which writes them to every viewer's connection.
func (g *guest) pump(pl *gst.Pipeline, fps int, done <-chan struct{}) error {
	frame := time.Second / time.Duration(fps)
	var lastPTS time.Duration = -1
	for {
		select {
		case <-done:
			return nil
		default:
		}
		s, err := pl.Pull(200 * time.Millisecond)
		if err != nil {
			if errors.Is(err, gst.ErrClosed) {
				return nil
			}
			return err
		}
		if s == nil {
			continue
		}
		dur := frame
		if lastPTS >= 0 && s.PTS > lastPTS && s.PTS-lastPTS < time.Second {
			dur = s.PTS - lastPTS
		}
		lastPTS = s.PTS
		if err := g.video.WriteSample(media.Sample{Data: s.Data, Duration: dur}); err != nil {
			return fmt.Errorf("writing to the video track: %w", err)
		}
		now := time.Now()
		g.mu.Lock()
		g.st.framesOut++
		if s.Key {
			g.st.keyFrames++
		}
		g.st.window = append(g.st.window, frameMark{now, len(s.Data)})
		i := 0
		for i < len(g.st.window) && now.Sub(g.st.window[i].at) > statsWindow {
			i++
		}
		g.st.window = g.st.window[i:]
		g.mu.Unlock()
	}
}

func (g *guest) stats() sdk.StreamStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := sdk.StreamStats{Instance: g.in.Index, FramesIn: g.st.framesIn, FramesOut: g.st.framesOut,
		Viewers: uint32(len(g.viewers)), KeyFrames: g.st.keyFrames}
	now := time.Now()
	var bytes, n int
	for _, m := range g.st.window {
		if now.Sub(m.at) <= statsWindow {
			bytes += m.bytes
			n++
		}
	}
	st.FPS = float64(n) / statsWindow.Seconds()
	st.BitrateBPS = float64(bytes*8) / statsWindow.Seconds()
	if g.st.encodeN > 0 {
		st.EncodeMs = float64(g.st.encodeTotal.Microseconds()) / 1000 / float64(g.st.encodeN)
	}
	return st
}

// startAudio drains the guest's audio FIFO for as long as the guest is
// attached, encoding to Opus while anyone watches and dropping the sound
// otherwise.
func (g *guest) startAudio(fifo string) {
	go func() {
		var pl *gst.Pipeline
		var lastWanted time.Time
		closePL := func() {
			if pl != nil {
				pl.Close()
				pl = nil
			}
		}
		defer closePL()
		sink := func(pcm []byte) {
			if g.viewerCount() > 0 {
				lastWanted = time.Now()
			}
			if time.Since(lastWanted) > linger {
				closePL()
				return
			}
			if pl == nil {
				var err error
				if pl, err = g.startAudioPipeline(); err != nil {
					logger.Error("audio pipeline", "guest", g.in.Name, "err", err)
					return
				}
			}
			if err := pl.Push(pcm); err != nil {
				logger.Warn("audio pipeline refused sound; restarting it", "guest", g.in.Name, "err", err)
				closePL()
			}
		}
		for g.ctx.Err() == nil {
			if err := drain(g.ctx, fifo, sink); err != nil {
				logger.Error("guest audio", "guest", g.in.Name, "err", err)
				select {
				case <-g.ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
}

func (g *guest) startAudioPipeline() (*gst.Pipeline, error) {
	pl, err := gst.Launch(audioPipeline())
	if err != nil {
		return nil, err
	}
	if err := pl.Start(); err != nil {
		pl.Close()
		return nil, err
	}
	go func() {
		var lastPTS time.Duration = -1
		for {
			s, err := pl.Pull(500 * time.Millisecond)
			if err != nil {
				return // closed
			}
			if s == nil {
				continue
			}
			dur := 20 * time.Millisecond
			if lastPTS >= 0 && s.PTS > lastPTS && s.PTS-lastPTS < time.Second {
				dur = s.PTS - lastPTS
			}
			lastPTS = s.PTS
			if err := g.audio.WriteSample(media.Sample{Data: s.Data, Duration: dur}); err != nil {
				logger.Debug("writing to the audio track", "guest", g.in.Name, "err", err)
			}
		}
	}()
	logger.Info("audio encoder started", "guest", g.in.Name)
	return pl, nil
}
