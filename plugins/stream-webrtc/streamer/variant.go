package streamer

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/plugins/stream-webrtc/x264"
	"github.com/locolan/loco/plugins/stream-webrtc/yuv"
	"github.com/locolan/loco/sdk"
)

// Limits of the thumbnail variant: a tile of the 3x3 grid is at most a
// third of a screen, and nobody plays a thumbnail.
const (
	thumbMaxW, thumbMaxH = 400, 300
	thumbMaxFPS          = 10
)

// variant is one picture of a guest that viewers can ask for (full or
// thumb): its shared video track, and an encoder that runs while it has
// viewers (and for linger after the last one left).
type variant struct {
	g          *guest
	name       string
	maxW, maxH int
	fps        int
	bitrate    int // kbit/s cap
	track      *webrtc.TrackLocalStaticSample
	kick       chan struct{} // the picture changed, or a viewer came or went
	keyReq     chan struct{}

	// Guarded by g.mu.
	viewers  map[string]*viewer
	idleFrom time.Time // when the last viewer left
	running  bool
	cur      encodeTimer // the running encoder, for its live encode time
	st       variantCounters
	m        variantMetrics // metrics.go
}

type variantCounters struct {
	width, height int
	framesOut     uint64
	repeats       uint64
	keyFrames     uint64
	encoders      uint64 // pipelines started
	encT          time.Duration
	encN          uint64
	window        []frameMark // last 2 s of sent frames, for fps and bitrate
}

type frameMark struct {
	at    time.Time
	bytes int
}

const statsWindow = 2 * time.Second

func newVariant(g *guest, cfg config, name string) (*variant, error) {
	v := &variant{g: g, name: name, maxW: 1 << 16, maxH: 1 << 16, fps: cfg.framerate, bitrate: cfg.bitrateKbps,
		kick: make(chan struct{}, 1), keyReq: make(chan struct{}, 1), viewers: map[string]*viewer{}}
	if name == sdk.VariantThumb {
		// A quarter of the pixels at a third of the rate: a tenth of the
		// bits is plenty.
		v.maxW, v.maxH, v.fps, v.bitrate = thumbMaxW, thumbMaxH, min(thumbMaxFPS, cfg.framerate), max(cfg.bitrateKbps/8, 150)
	}
	track, err := webrtc.NewTrackLocalStaticSample(videoCapability(cfg.codec), "video",
		"loco-"+g.in.Name+"-"+name)
	if err != nil {
		return nil, fmt.Errorf("guest %s: creating the %s video track: %w", g.in.Name, name, err)
	}
	v.track = track
	return v, nil
}

func (v *variant) poke() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// requestKeyFrame asks the running encoder for a key frame (a viewer's PLI
// or FIR, or a viewer that just connected).
func (v *variant) requestKeyFrame() {
	select {
	case v.keyReq <- struct{}{}:
	default:
	}
}

func (v *variant) addViewer(vw *viewer) {
	g := v.g
	g.mu.Lock()
	v.viewers[vw.id] = vw
	start := !v.running
	v.running = true
	g.mu.Unlock()
	if start {
		g.encoderStarted()
		go v.run()
	}
	if v == g.full {
		g.fullStarted()
	}
	v.poke()
}

func (v *variant) removeViewer(vw *viewer) {
	v.g.mu.Lock()
	delete(v.viewers, vw.id)
	if len(v.viewers) == 0 {
		v.idleFrom = time.Now()
	}
	v.g.mu.Unlock()
	v.poke()
}

// encoder is one variant's encoder at one size: H.264 through libx264 in
// the variant's goroutine, or VP8 through a GStreamer pipeline.
type encoder struct {
	x    *x264.Encoder
	pl   *gst.Pipeline
	w, h int
	done chan struct{}
	// x264 only: the picture copied out of the guest's frame, so the
	// encoder reads it while capture writes the next one; and when the
	// last frame went out, for the next one's duration.
	snap     *yuv.Frame
	lastSent time.Time
}

type encodeTimer interface {
	EncodeTime() (time.Duration, uint64)
}

// run encodes the guest's picture for this variant's viewers until nobody
// has watched for linger. It pushes a frame when the picture changed (at
// most fps a second), the last one again after repeatEvery of stillness,
// and nothing otherwise; it rebuilds the encoder when the guest's display
// changes size.
func (v *variant) run() {
	g := v.g
	defer g.encoderStopped()
	var enc *encoder
	defer func() {
		if enc != nil {
			v.closeEncoder(enc)
		}
	}()
	interval := time.Second / time.Duration(v.fps)
	var lastPush, lastKey time.Time
	var pushedGen uint64
	var scaled *yuv.Frame
	forcePush, wantKey := false, false
	// Repeats of the picture since it last changed: the first one is coded
	// as usual, so the encoder refines a picture it had to code coarsely
	// while the screen moved; the later ones only keep the stream alive.
	stillRepeats := 0
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-v.kick:
		case <-timer.C:
		case <-v.keyReq:
			if enc != nil && time.Since(lastKey) >= keyFrameGap {
				lastKey = time.Now()
				if enc.pl != nil {
					enc.pl.ForceKeyUnit()
				}
				// A forced key unit applies to the next frame pushed: on a
				// still screen there would be none for a second.
				forcePush, wantKey = true, true
			} else if enc != nil {
				time.AfterFunc(keyFrameGap, v.requestKeyFrame)
			}
		}
		g.mu.Lock()
		if len(v.viewers) == 0 && time.Since(v.idleFrom) >= linger {
			v.running = false
			g.mu.Unlock()
			logger.Info("encoder stopped: nobody watches", "guest", g.in.Name, "variant", v.name)
			return
		}
		frame, gen := g.frame, g.gen
		if frame == nil {
			g.mu.Unlock()
			timer.Reset(time.Second)
			continue
		}
		w, h := yuv.Fit(frame.W, frame.H, v.maxW, v.maxH)
		if enc == nil || enc.w != w || enc.h != h {
			g.mu.Unlock()
			if enc != nil {
				v.closeEncoder(enc)
				enc = nil
			}
			var err error
			if enc, err = v.startEncoder(w, h); err != nil {
				logger.Error("starting the encoder", "guest", g.in.Name, "variant", v.name, "err", err)
				timer.Reset(time.Second)
				continue
			}
			if w != frame.W || h != frame.H {
				scaled = yuv.NewFrame(w, h)
			} else {
				scaled = nil
			}
			pushedGen, forcePush, wantKey = 0, true, true
			g.mu.Lock()
			frame, gen = g.frame, g.gen
			if fw, fh := yuv.Fit(frame.W, frame.H, v.maxW, v.maxH); fw != w || fh != h {
				// Resized again meanwhile: the next round rebuilds.
				g.mu.Unlock()
				v.poke()
				continue
			}
		}
		now := time.Now()
		changed := gen != pushedGen
		due := forcePush || (changed && now.Sub(lastPush) >= interval) || now.Sub(lastPush) >= repeatEvery
		if !due {
			g.mu.Unlock()
			wait := lastPush.Add(repeatEvery).Sub(now)
			if changed {
				wait = lastPush.Add(interval).Sub(now)
			}
			timer.Reset(max(wait, time.Millisecond))
			continue
		}
		var err error
		if enc.x != nil {
			src := scaled
			if src != nil {
				err = scaled.ScaleFrom(frame)
			} else {
				src = enc.snap
				err = enc.snap.CopyFrom(frame)
			}
			g.mu.Unlock()
			if err == nil {
				err = v.encode(enc, src, x264.Frame{Key: wantKey, Skip: !changed && stillRepeats > 0}, now)
			}
		} else if scaled != nil {
			err = scaled.ScaleFrom(frame)
			g.mu.Unlock()
			if err == nil {
				err = enc.pl.Push(scaled.Buf)
			}
		} else {
			// Push copies the bytes; holding the lock keeps capture from
			// writing into them meanwhile (tens of microseconds).
			err = enc.pl.Push(frame.Buf)
			g.mu.Unlock()
		}
		if err != nil {
			logger.Warn("encoder refused a frame; rebuilding it", "guest", g.in.Name, "variant", v.name, "err", err)
			v.closeEncoder(enc)
			enc = nil
			timer.Reset(100 * time.Millisecond)
			continue
		}
		if changed {
			stillRepeats = 0
		} else {
			stillRepeats++
			g.mu.Lock()
			v.st.repeats++
			g.mu.Unlock()
		}
		wantKey = false
		pushedGen, lastPush, forcePush = gen, now, false
		timer.Reset(repeatEvery)
	}
}

func (v *variant) startEncoder(w, h int) (*encoder, error) {
	cfg, _ := v.g.p.config()
	e := &encoder{w: w, h: h, done: make(chan struct{})}
	var cur encodeTimer
	if cfg.codec == "vp8" {
		pl, err := gst.Launch(vp8Pipeline(w, h, v.fps, v.bitrate))
		if err != nil {
			return nil, err
		}
		if err := pl.Start(); err != nil {
			_, msg := pl.Bus(time.Second)
			pl.Close()
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		e.pl, cur = pl, pl
	} else {
		x, err := x264.Open(x264.Config{Width: w, Height: h, FPS: v.fps, MaxKbps: v.bitrate})
		if err != nil {
			return nil, err
		}
		e.x, cur, e.snap = x, x, yuv.NewFrame(w, h)
	}
	v.g.mu.Lock()
	v.st.encoders++
	v.st.width, v.st.height = w, h
	v.cur = cur
	n := v.st.encoders
	v.g.mu.Unlock()
	logger.Info("encoder started", "guest", v.g.in.Name, "variant", v.name, "size", fmt.Sprintf("%dx%d", w, h),
		"codec", cfg.codec, "encoders_started", n)
	if e.pl != nil {
		go v.pump(e)
		go v.watchBus(e)
	}
	return e, nil
}

// encode codes one picture with libx264 and sends it. A frame's duration is
// the real time since the one before, as in pump.
func (v *variant) encode(e *encoder, f *yuv.Frame, how x264.Frame, now time.Time) error {
	data, key, err := e.x.Encode(f, how)
	if err != nil {
		return err
	}
	v.observeEncode(e.x)
	dur := time.Second / time.Duration(v.fps)
	if !e.lastSent.IsZero() && now.Sub(e.lastSent) < 10*time.Second {
		dur = now.Sub(e.lastSent)
	}
	e.lastSent = now
	v.send(data, key, dur)
	return nil
}

func (v *variant) closeEncoder(e *encoder) {
	close(e.done)
	var t time.Duration
	var n uint64
	if e.x != nil {
		t, n = e.x.EncodeTime()
		e.x.Close()
	} else {
		t, n = e.pl.EncodeTime()
		e.pl.Close()
	}
	v.g.mu.Lock()
	v.st.encT += t
	v.st.encN += n
	v.st.width, v.st.height = 0, 0
	v.cur = nil
	v.g.mu.Unlock()
}

// watchBus reads the encoder's bus twice a second without waiting in C
// (see gst.Pipeline.notify for why not).
func (v *variant) watchBus(e *encoder) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		switch kind, msg := e.pl.Bus(0); kind {
		case gst.BusError:
			logger.Error("encoder failed", "guest", v.g.in.Name, "variant", v.name, "err", msg)
			return
		case gst.BusWarning:
			logger.Debug("GStreamer warning", "guest", v.g.in.Name, "msg", msg)
		}
	}
}

// pump moves encoded frames from a GStreamer encoder to send. A frame's duration
// is the real time since the one before, so RTP timestamps follow the
// wall clock even when frames come a second apart.
func (v *variant) pump(e *encoder) {
	frame := time.Second / time.Duration(v.fps)
	var lastPTS time.Duration = -1
	for {
		s, err := e.pl.Pull(200 * time.Millisecond)
		if err != nil {
			if !errors.Is(err, gst.ErrClosed) {
				logger.Warn("reading the encoder", "guest", v.g.in.Name, "variant", v.name, "err", err)
			}
			return
		}
		if s == nil {
			select {
			case <-e.done:
				return
			default:
				continue
			}
		}
		dur := frame
		if lastPTS >= 0 && s.PTS > lastPTS && s.PTS-lastPTS < 10*time.Second {
			dur = s.PTS - lastPTS
		}
		lastPTS = s.PTS
		v.observeEncode(e.pl)
		v.send(s.Data, s.Key, dur)
	}
}

// send writes an encoded frame to the variant's shared track, which writes
// it to every viewer's connection, and counts it.
func (v *variant) send(data []byte, key bool, dur time.Duration) {
	if err := v.track.WriteSample(media.Sample{Data: data, Duration: dur}); err != nil {
		logger.Debug("writing to the video track", "guest", v.g.in.Name, "err", err)
	}
	now := time.Now()
	v.g.mu.Lock()
	v.st.framesOut++
	if key {
		v.st.keyFrames++
	}
	v.st.window = append(v.st.window, frameMark{now, len(data)})
	i := 0
	for i < len(v.st.window) && now.Sub(v.st.window[i].at) > statsWindow {
		i++
	}
	v.st.window = v.st.window[i:]
	v.g.mu.Unlock()
}

// statsLocked is called with g.mu held.
func (v *variant) statsLocked() sdk.StreamStats {
	st := sdk.StreamStats{Variant: v.name, Width: v.st.width, Height: v.st.height, FramesOut: v.st.framesOut,
		Repeats: v.st.repeats, Viewers: uint32(len(v.viewers)), KeyFrames: v.st.keyFrames}
	now := time.Now()
	var bytes, n int
	for _, m := range v.st.window {
		if now.Sub(m.at) <= statsWindow {
			bytes += m.bytes
			n++
		}
	}
	st.FPS = float64(n) / statsWindow.Seconds()
	st.BitrateBPS = float64(bytes*8) / statsWindow.Seconds()
	encT, encN := v.st.encT, v.st.encN
	if v.cur != nil {
		t, n := v.cur.EncodeTime()
		encT, encN = encT+t, encN+n
	}
	if encN > 0 {
		st.EncodeMs = float64(encT.Microseconds()) / 1000 / float64(encN)
	}
	return st
}
