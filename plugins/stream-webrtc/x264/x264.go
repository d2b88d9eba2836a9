// Package x264 encodes I420 pictures to H.264 by calling libx264 (Debian's
// libx264-dev) directly, one synchronous call a frame. It exists for what
// GStreamer's x264enc cannot do per frame: force a key frame on this very
// frame, and code a repeat of an unchanged picture as an all-skip frame (a
// few bytes) instead of letting the rate control spend a frame's budget
// refining it. Calling the library from the goroutine that has the picture
// also saves the hand-offs to and from a pipeline's threads.
package x264

/*
#cgo LDFLAGS: -lx264
#include <stdint.h>
#include <stdlib.h>
#include <x264.h>

typedef struct {
	x264_t *h;
	x264_picture_t in, out;
} loco_x264;

static int loco_x264_open(loco_x264 *e, int w, int h, int fps, int max_kbps, float crf) {
	x264_param_t p;
	if (x264_param_default_preset(&p, "ultrafast", "zerolatency") < 0) return -1;
	p.i_log_level = X264_LOG_ERROR;
	p.i_width = w;
	p.i_height = h;
	p.i_csp = X264_CSP_I420;
	p.i_fps_num = fps;
	p.i_fps_den = 1;
	p.b_vfr_input = 0;
	p.i_threads = 1;
	p.b_sliced_threads = 0;
	p.i_keyint_max = X264_KEYINT_MAX_INFINITE;
	p.i_keyint_min = 1;
	p.i_scenecut_threshold = 0;
	p.i_frame_reference = 1;
	p.analyse.i_trellis = 0;
	p.rc.i_rc_method = X264_RC_CRF;
	p.rc.f_rf_constant = crf;
	p.rc.i_vbv_max_bitrate = max_kbps;
	p.rc.i_vbv_buffer_size = max_kbps / 2;
	p.b_repeat_headers = 1;
	p.b_annexb = 1;
	if (x264_param_apply_profile(&p, "baseline") < 0) return -2;
	e->h = x264_encoder_open(&p);
	if (!e->h) return -3;
	x264_picture_init(&e->in);
	e->in.img.i_csp = X264_CSP_I420;
	e->in.img.i_plane = 3;
	return 0;
}

static int loco_x264_encode(loco_x264 *e, uint8_t *y, uint8_t *u, uint8_t *v, int ys, int cs,
		int64_t pts, int type, int qpplus1, uint8_t **out, int *key) {
	x264_nal_t *nals;
	int n;
	e->in.img.plane[0] = y;
	e->in.img.plane[1] = u;
	e->in.img.plane[2] = v;
	e->in.img.i_stride[0] = ys;
	e->in.img.i_stride[1] = cs;
	e->in.img.i_stride[2] = cs;
	e->in.i_pts = pts;
	e->in.i_type = type;
	e->in.i_qpplus1 = qpplus1;
	int size = x264_encoder_encode(e->h, &nals, &n, &e->in, &e->out);
	if (size <= 0 || n <= 0) return size;
	*out = nals[0].p_payload;
	*key = e->out.b_keyframe;
	return size;
}

static void loco_x264_close(loco_x264 *e) {
	if (e->h) x264_encoder_close(e->h);
	e->h = NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/locolan/loco/plugins/stream-webrtc/yuv"
)

// Config is an encoder's fixed settings.
type Config struct {
	Width, Height int
	// FPS is the rate the rate control plans for: the most frames a second
	// the caller sends. Sending fewer (only on change) is fine.
	FPS int
	// MaxKbps caps the bitrate (VBV, half a second of buffer); below it
	// the quality is constant (CRF).
	MaxKbps int
	// CRF is the constant quality, 0-51, lower is better; 0 means 21
	// (GStreamer's x264enc default, what loco used before).
	CRF float64
}

// Frame says how to code one picture.
type Frame struct {
	// Key makes this frame an IDR: a new viewer or a PLI/FIR.
	Key bool
	// Skip codes the picture at the coarsest quantizer, so an unchanged
	// picture comes out as every macroblock skipped: a repeat that keeps a
	// receiver's stream alive for a few bytes.
	Skip bool
}

// Encoder is one libx264 encoder. It is not safe for concurrent use.
type Encoder struct {
	c   *C.loco_x264
	cfg Config
	pts int64
	// Read by EncodeTime from other goroutines.
	encT   atomic.Int64
	frames atomic.Uint64
}

// ErrClosed is returned by Encode after Close.
var ErrClosed = errors.New("x264: encoder closed")

// Open starts an encoder: constrained baseline (what every WebRTC H.264
// decoder takes), ultrafast, no lookahead and one thread, so each Encode
// returns its own frame; no periodic key frames.
func Open(cfg Config) (*Encoder, error) {
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width%2 != 0 || cfg.Height%2 != 0 {
		return nil, fmt.Errorf("x264: a %dx%d picture: width and height must be even and positive", cfg.Width, cfg.Height)
	}
	if cfg.FPS <= 0 || cfg.MaxKbps <= 0 {
		return nil, fmt.Errorf("x264: fps %d and bitrate %d kbit/s must be positive", cfg.FPS, cfg.MaxKbps)
	}
	if cfg.CRF == 0 {
		cfg.CRF = 21
	}
	c := (*C.loco_x264)(C.calloc(1, C.sizeof_loco_x264))
	if rc := C.loco_x264_open(c, C.int(cfg.Width), C.int(cfg.Height), C.int(cfg.FPS), C.int(cfg.MaxKbps), C.float(cfg.CRF)); rc != 0 {
		C.free(unsafe.Pointer(c))
		return nil, fmt.Errorf("x264: opening a %dx%d encoder failed (%d)", cfg.Width, cfg.Height, rc)
	}
	return &Encoder{c: c, cfg: cfg}, nil
}

// Encode codes f, which must have the encoder's size, and returns the
// frame's NAL units in Annex B form (SPS and PPS before each key frame)
// and whether it is a key frame. The bytes are the caller's.
func (e *Encoder) Encode(f *yuv.Frame, how Frame) ([]byte, bool, error) {
	if e.c == nil {
		return nil, false, ErrClosed
	}
	if f.W != e.cfg.Width || f.H != e.cfg.Height {
		return nil, false, fmt.Errorf("x264: a %dx%d picture for a %dx%d encoder", f.W, f.H, e.cfg.Width, e.cfg.Height)
	}
	y, u, v, ys, cs := f.Planes()
	typ, qp := C.int(C.X264_TYPE_AUTO), C.int(C.X264_QP_AUTO)
	if how.Key {
		typ = C.X264_TYPE_IDR
	}
	if how.Skip && !how.Key {
		qp = 52 // QP 51 + 1
	}
	var out *C.uint8_t
	var key C.int
	start := time.Now()
	n := C.loco_x264_encode(e.c, (*C.uint8_t)(unsafe.Pointer(&y[0])), (*C.uint8_t)(unsafe.Pointer(&u[0])),
		(*C.uint8_t)(unsafe.Pointer(&v[0])), C.int(ys), C.int(cs), C.int64_t(e.pts), typ, qp, &out, &key)
	e.encT.Add(int64(time.Since(start)))
	e.frames.Add(1)
	e.pts++
	if n < 0 {
		return nil, false, fmt.Errorf("x264: encoding frame %d failed", e.pts-1)
	}
	if n == 0 {
		// Only an encoder with lookahead or threads holds frames back;
		// this one never does.
		return nil, false, fmt.Errorf("x264: frame %d came out empty", e.pts-1)
	}
	return C.GoBytes(unsafe.Pointer(out), n), key != 0, nil
}

// EncodeTime is the time spent in Encode and the number of frames. It may
// be called from any goroutine.
func (e *Encoder) EncodeTime() (time.Duration, uint64) {
	return time.Duration(e.encT.Load()), e.frames.Load()
}

// Close frees the encoder; Encode fails after it.
func (e *Encoder) Close() {
	if e.c == nil {
		return
	}
	C.loco_x264_close(e.c)
	C.free(unsafe.Pointer(e.c))
	e.c = nil
}
