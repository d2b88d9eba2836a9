package streamer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/locolan/loco/plugins/stream-webrtc/rfb"
	"github.com/locolan/loco/plugins/stream-webrtc/yuv"
	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/backoff"
)

// Timings of a guest's stream.
const (
	// linger keeps an encoder running this long after its last viewer
	// left, so a reconnecting dashboard (a reload, a focus switch back)
	// finds it warm.
	linger = 10 * time.Second
	// keyFrameGap rate-limits forced key frames: a burst of PLIs from
	// several viewers needs only one.
	keyFrameGap = 250 * time.Millisecond
	// repeatEvery is how often a still screen is sent again: often enough
	// that a receiver never takes the silence for a lost stream (Chromium
	// asks for a key frame after ~3 s without frames), as libwebrtc's own
	// screen share does (one repeat a second).
	repeatEvery = time.Second
)

// guest is one guest's stream: while anyone watches, one capture connection
// to its display that keeps the guest's picture as I420, and an encoder per
// variant that is watched, each shared by all viewers of that variant.
type guest struct {
	p       *plugin
	in      sdk.Instance
	network string // the guest's VNC display
	addr    string
	audio   *webrtc.TrackLocalStaticSample
	ctx     context.Context
	cancel  context.CancelFunc
	full    *variant
	thumb   *variant

	mu          sync.Mutex
	frame       *yuv.Frame // the guest's picture at its display's size; nil before the first update
	gen         uint64     // bumped by every update of frame
	framesIn    uint64     // updates received from the display
	displayUp   bool
	running     int // variants whose encoder runs
	stopCapture context.CancelFunc
	conn        *rfb.Capture // the open capture connection, if any
	redial      bool         // capture was closed to change its depth: dial again at once
}

// newGuest is called with p.mu held: it must not call p.config.
func newGuest(p *plugin, cfg config, in sdk.Instance, network, addr string) (*guest, error) {
	// Video and audio go out as two streams (two msids), not one: a
	// browser lip-syncs the tracks of one stream, and may hold video frames
	// back to match the audio's deeper jitter buffer. For a game, a picture
	// that keeps up with the keys matters more.
	audio, err := webrtc.NewTrackLocalStaticSample(audioCapability(), "audio", "loco-"+in.Name+"-audio")
	if err != nil {
		return nil, fmt.Errorf("guest %s: creating the audio track: %w", in.Name, err)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	g := &guest{p: p, in: in, network: network, addr: addr, audio: audio, ctx: ctx, cancel: cancel}
	if g.full, err = newVariant(g, cfg, sdk.VariantFull); err != nil {
		return nil, err
	}
	if g.thumb, err = newVariant(g, cfg, sdk.VariantThumb); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guest) stop() { g.cancel() }

func (g *guest) variant(name string) *variant {
	if name == sdk.VariantThumb {
		return g.thumb
	}
	return g.full
}

func (g *guest) variants() []*variant { return []*variant{g.full, g.thumb} }

func (g *guest) viewerCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.full.viewers) + len(g.thumb.viewers)
}

// encoderStarted and encoderStopped keep the capture connection open
// exactly while some variant's encoder runs.
func (g *guest) encoderStarted() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running++
	if g.running == 1 {
		ctx, cancel := context.WithCancel(g.ctx)
		g.stopCapture = cancel
		go g.capture(ctx)
	}
}

// captureDepth is the pixel format capture should use now: a guest watched
// only as thumbnails is captured at 16 bits a pixel (half the bytes to
// copy for a picture scaled to a quarter anyway); one with a full viewer at
// 32, the colours as the guest drew them.
func (g *guest) captureDepthLocked() rfb.Depth {
	if g.full.running {
		return rfb.BGRx
	}
	return rfb.RGB565
}

// fullStarted gets the full variant its 32-bit picture at once: a capture
// at 16 bits is closed and dialled again (its next update could already be
// on its way in the old format, so the format cannot change in place), and
// the new connection's first update is the whole screen.
func (g *guest) fullStarted() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil && g.conn.Depth() != g.captureDepthLocked() {
		g.redial = true
		g.conn.Close()
	}
}

func (g *guest) encoderStopped() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.running == 0 {
		g.stopCapture()
	}
}

// capture keeps one RFB connection to the guest's display and converts
// every changed rectangle into the guest's I420 picture, then tells the
// encoders. A still screen costs nothing: QEMU sends no update and this
// loop sleeps in a read. It reconnects with backoff when the display goes
// away (the guest stopped or restarted); until then the encoders keep
// repeating the last picture.
func (g *guest) capture(ctx context.Context) {
	retry := backoff.Backoff{First: 100 * time.Millisecond, Max: 3 * time.Second}
	for ctx.Err() == nil {
		err := g.captureOnce(ctx, retry.Reset)
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		if g.redial || errors.Is(err, errNewDepth) {
			g.redial = false
			g.mu.Unlock()
			continue
		}
		was := g.displayUp
		g.displayUp = false
		g.mu.Unlock()
		if was {
			logger.Info("guest display gone", "guest", g.in.Name, "err", err)
		} else {
			logger.Debug("guest display not reachable", "guest", g.in.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.Next()):
		}
	}
}

// errNewDepth ends a capture connection whose depth is no longer the one
// wanted (the full viewer left).
var errNewDepth = errors.New("the capture depth changed")

func (g *guest) captureOnce(ctx context.Context, connected func()) error {
	g.mu.Lock()
	depth := g.captureDepthLocked()
	g.redial = false
	g.mu.Unlock()
	c, err := rfb.DialCapture(ctx, g.network, g.addr, depth)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.conn = c
	if g.captureDepthLocked() != depth {
		// The full viewer came or went while dialling.
		g.mu.Unlock()
		c.Close()
		return errNewDepth
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.conn == c {
			g.conn = nil
		}
		g.mu.Unlock()
		c.Close()
	}()
	connected()
	var asked time.Time
	for {
		u, err := c.Next()
		if err != nil {
			return err
		}
		// A guest watched only as a thumbnail needs no more updates than
		// the thumbnail's frame rate: asking later lets QEMU merge the
		// changes (less to copy here, less for QEMU to send). With a full
		// viewer, the next request goes out at once: latency.
		if gap := g.captureGap(); gap > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(asked.Add(gap))):
			}
		}
		asked = time.Now()
		g.mu.Lock()
		stale := g.captureDepthLocked() != depth
		g.mu.Unlock()
		if stale {
			return errNewDepth
		}
		if err := c.Request(); err != nil {
			return err
		}
		s := c.Size()
		g.mu.Lock()
		if ctx.Err() != nil {
			g.mu.Unlock()
			return ctx.Err()
		}
		if !g.displayUp {
			g.displayUp = true
			logger.Info("guest display", "guest", g.in.Name, "size", s.String())
		}
		d := u.Damage
		if g.frame == nil || g.frame.W != (s.W+1)&^1 || g.frame.H != (s.H+1)&^1 {
			if g.frame != nil {
				logger.Info("guest display resized", "guest", g.in.Name, "size", s.String())
			}
			g.frame = yuv.NewFrame(s.W, s.H)
			d = rfb.Rect{W: s.W, H: s.H}
		}
		if depth == rfb.RGB565 {
			err = g.frame.Update565(c.Pixels(), s.W, s.H, d.X, d.Y, d.W, d.H)
		} else {
			err = g.frame.Update(c.Pixels(), s.W, s.H, d.X, d.Y, d.W, d.H)
		}
		g.gen++
		g.framesIn++
		g.mu.Unlock()
		if err != nil {
			return err
		}
		g.full.poke()
		g.thumb.poke()
	}
}

// captureGap is the least time between two update requests: none while
// the full variant runs, a thumbnail frame interval otherwise.
func (g *guest) captureGap() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.full.running {
		return 0
	}
	return time.Second / time.Duration(g.thumb.fps)
}

func (g *guest) stats() []sdk.StreamStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]sdk.StreamStats, 0, 2)
	for _, v := range g.variants() {
		st := v.statsLocked()
		st.Instance, st.FramesIn = g.in.Index, g.framesIn
		out = append(out, st)
	}
	return out
}
