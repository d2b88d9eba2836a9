// Package gst is the small part of GStreamer the stream plugin needs, through
// cgo: parse a pipeline description, push raw data into an appsrc, pull
// encoded samples from an appsink, ask the encoder for a key frame, measure
// its time per frame, and read errors off the bus. Debian's GStreamer
// 1.22 has no Go binding here (go-gst is not packaged), and this is all the
// plugin uses.
//
// Every GLib and GStreamer message goes to stderr: the plugin's stdout is the
// go-plugin handshake, and one stray byte there breaks it.
package gst

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0
#define _GNU_SOURCE // pipe2
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

static void loco_to_stderr(const gchar *s) { fputs(s, stderr); }

// loco_log_writer prints what GLib's default writer would print (debug
// messages only for the domains in G_MESSAGES_DEBUG), but to stderr.
static GLogWriterOutput loco_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data) {
	const char *domain = NULL;
	for (gsize i = 0; i < n; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0) domain = fields[i].value;
	}
	if (g_log_writer_default_would_drop(level, domain)) return G_LOG_WRITER_HANDLED;
	gchar *s = g_log_writer_format_fields(level, fields, n, FALSE);
	fprintf(stderr, "%s\n", s);
	g_free(s);
	return G_LOG_WRITER_HANDLED;
}

// loco_init routes GLib's printing and logging to stderr (g_print and some
// g_log levels default to stdout), then initialises GStreamer.
static int loco_init(char **err) {
	g_set_print_handler(loco_to_stderr);
	g_set_printerr_handler(loco_to_stderr);
	g_log_set_writer_func(loco_log_writer, NULL, NULL);
	GError *e = NULL;
	if (!gst_init_check(NULL, NULL, &e)) {
		*err = g_strdup(e ? e->message : "gst_init failed");
		if (e) g_error_free(e);
		return 0;
	}
	return 1;
}

static int loco_has_element(const char *name) {
	GstElementFactory *f = gst_element_factory_find(name);
	if (!f) return 0;
	gst_object_unref(f);
	return 1;
}

typedef struct {
	GstElement *pipe;
	GstElement *sink;   // appsink "out", may be NULL
	GstElement *src;    // appsrc "in", may be NULL
	GstBus *bus;
	// The encoder named "enc" works inside its sink pad's chain call when
	// it runs without look-ahead (x264 zerolatency, vp8 lag-in-frames=0):
	// a frame goes in and its encoded form comes out on the same thread
	// before the call returns. The time between the two probes is the
	// encode time. (x264enc rewrites timestamps, so matching by PTS fails.)
	gint64 enc_in_at;
	gint64 enc_total_us;
	gint64 enc_count;
	// A byte is written to notify_wr whenever the appsink has a new sample
	// or reached the end, so Go waits in its poller instead of in a
	// blocking C call (see Pipeline.Pull).
	int notify_rd, notify_wr;
} LocoPipe;

static void loco_notify(LocoPipe *lp) {
	char c = 1;
	// Non-blocking: a full pipe already says "look".
	ssize_t n = write(lp->notify_wr, &c, 1);
	(void)n;
}

static GstFlowReturn loco_on_sample(GstAppSink *s, gpointer data) { loco_notify(data); return GST_FLOW_OK; }
static void loco_on_eos(GstAppSink *s, gpointer data) { loco_notify(data); }

static GstPadProbeReturn loco_enc_in_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
	LocoPipe *lp = data;
	__atomic_store_n(&lp->enc_in_at, g_get_monotonic_time(), __ATOMIC_RELAXED);
	return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn loco_enc_out_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
	LocoPipe *lp = data;
	gint64 in = __atomic_load_n(&lp->enc_in_at, __ATOMIC_RELAXED);
	if (in > 0) {
		__atomic_fetch_add(&lp->enc_total_us, g_get_monotonic_time() - in, __ATOMIC_RELAXED);
		__atomic_fetch_add(&lp->enc_count, 1, __ATOMIC_RELAXED);
	}
	return GST_PAD_PROBE_OK;
}

static void loco_probe(GstElement *pipe, const char *name, const char *pad, GstPadProbeCallback cb, LocoPipe *lp) {
	GstElement *e = gst_bin_get_by_name(GST_BIN(pipe), name);
	if (!e) return;
	GstPad *p = gst_element_get_static_pad(e, pad);
	if (p) {
		gst_pad_add_probe(p, GST_PAD_PROBE_TYPE_BUFFER, cb, lp, NULL);
		gst_object_unref(p);
	}
	gst_object_unref(e);
}

static LocoPipe *loco_launch(const char *desc, char **err) {
	GError *e = NULL;
	GstElement *pipe = gst_parse_launch(desc, &e);
	if (e) {
		*err = g_strdup(e->message);
		g_error_free(e);
		if (pipe) gst_object_unref(pipe);
		return NULL;
	}
	if (!GST_IS_PIPELINE(pipe)) {
		*err = g_strdup("the description is not a pipeline");
		gst_object_unref(pipe);
		return NULL;
	}
	LocoPipe *lp = g_new0(LocoPipe, 1);
	lp->pipe = pipe;
	lp->sink = gst_bin_get_by_name(GST_BIN(pipe), "out");
	lp->notify_rd = lp->notify_wr = -1;
	int fds[2];
	if (lp->sink && pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
		lp->notify_rd = fds[0];
		lp->notify_wr = fds[1];
		GstAppSinkCallbacks cb = {0};
		cb.new_sample = loco_on_sample;
		cb.eos = loco_on_eos;
		gst_app_sink_set_callbacks(GST_APP_SINK(lp->sink), &cb, lp, NULL);
	}
	lp->src = gst_bin_get_by_name(GST_BIN(pipe), "in");
	lp->bus = gst_element_get_bus(pipe);
	loco_probe(pipe, "enc", "sink", loco_enc_in_probe, lp);
	loco_probe(pipe, "enc", "src", loco_enc_out_probe, lp);
	return lp;
}

static int loco_play(LocoPipe *lp) {
	return gst_element_set_state(lp->pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

// loco_stop sets the pipeline to NULL: its threads end and blocked appsink
// and appsrc calls return.
static void loco_stop(LocoPipe *lp) { gst_element_set_state(lp->pipe, GST_STATE_NULL); }

static void loco_free(LocoPipe *lp) {
	gst_element_set_state(lp->pipe, GST_STATE_NULL);
	if (lp->sink) gst_object_unref(lp->sink);
	if (lp->src) gst_object_unref(lp->src);
	gst_object_unref(lp->bus);
	gst_object_unref(lp->pipe);
	// The pipeline is stopped: no streaming thread writes any more. The
	// read end is Go's (Pipeline.notify).
	if (lp->notify_wr >= 0) close(lp->notify_wr);
	g_free(lp);
}

typedef struct {
	guint8 *data;
	gsize size;
	gint64 pts;       // ns, -1 when unknown
	gint64 duration;  // ns, -1 when unknown
	int key;
	int eos;
} LocoSample;

// loco_pull waits up to timeout_ns for a sample from the appsink "out".
// The caller frees out->data with g_free.
static int loco_pull(LocoPipe *lp, gint64 timeout_ns, LocoSample *out) {
	memset(out, 0, sizeof *out);
	GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(lp->sink), timeout_ns);
	if (!s) {
		out->eos = gst_app_sink_is_eos(GST_APP_SINK(lp->sink));
		return 0;
	}
	GstBuffer *b = gst_sample_get_buffer(s);
	GstMapInfo m;
	if (!b || !gst_buffer_map(b, &m, GST_MAP_READ)) {
		gst_sample_unref(s);
		return 0;
	}
	out->data = g_memdup2(m.data, m.size);
	out->size = m.size;
	out->pts = GST_BUFFER_PTS_IS_VALID(b) ? (gint64)GST_BUFFER_PTS(b) : -1;
	out->duration = GST_BUFFER_DURATION_IS_VALID(b) ? (gint64)GST_BUFFER_DURATION(b) : -1;
	out->key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
	gst_buffer_unmap(b, &m);
	gst_sample_unref(s);
	return 1;
}

static int loco_push(LocoPipe *lp, const void *data, gsize n) {
	GstBuffer *b = gst_buffer_new_memdup(data, n);
	return gst_app_src_push_buffer(GST_APP_SRC(lp->src), b) == GST_FLOW_OK;
}


static int loco_force_key_unit(LocoPipe *lp) {
	GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0);
	return gst_element_send_event(lp->sink, ev);
}

static gint64 loco_enc_total_us(LocoPipe *lp) { return __atomic_load_n(&lp->enc_total_us, __ATOMIC_RELAXED); }
static gint64 loco_enc_count(LocoPipe *lp) { return __atomic_load_n(&lp->enc_count, __ATOMIC_RELAXED); }

// loco_bus returns 0 when no message came within timeout_ns, 1 for an
// error, 2 for end of stream, 3 for a warning, with a text to free.
static int loco_bus(LocoPipe *lp, gint64 timeout_ns, char **text) {
	GstMessage *m = gst_bus_timed_pop_filtered(lp->bus, timeout_ns,
		GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_WARNING);
	if (!m) return 0;
	int kind = 0;
	GError *e = NULL;
	gchar *dbg = NULL;
	const gchar *from = GST_MESSAGE_SRC(m) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) : "pipeline";
	switch (GST_MESSAGE_TYPE(m)) {
	case GST_MESSAGE_ERROR:
		gst_message_parse_error(m, &e, &dbg);
		kind = 1;
		break;
	case GST_MESSAGE_WARNING:
		gst_message_parse_warning(m, &e, &dbg);
		kind = 3;
		break;
	default:
		kind = 2;
	}
	if (e) {
		*text = g_strdup_printf("%s: %s (%s)", from, e->message, dbg ? dbg : "");
		g_error_free(e);
	} else {
		*text = g_strdup_printf("%s: end of stream", from);
	}
	g_free(dbg);
	gst_message_unref(m);
	return kind;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

var (
	initOnce sync.Once
	initErr  error
)

// Init initialises GStreamer once per process. The first call may take a
// second or two while GStreamer scans its plugins into its registry cache.
func Init() error {
	initOnce.Do(func() {
		var cerr *C.char
		if C.loco_init(&cerr) == 0 {
			initErr = fmt.Errorf("initialising GStreamer: %s", C.GoString(cerr))
			C.g_free(C.gpointer(cerr))
		}
	})
	return initErr
}

// HasElement reports whether an element factory is installed.
func HasElement(name string) bool {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.loco_has_element(cs) != 0
}

// Pipeline is one running GStreamer pipeline. By convention its appsink is
// named "out", its appsrc "in" and the encoder "enc" (its time per frame is
// measured).
type Pipeline struct {
	// use is held shared by every call into C and exclusively by Close,
	// which frees the pipeline only once the calls in flight are out.
	use    sync.RWMutex
	closed atomic.Bool
	p      *C.LocoPipe
	// notify becomes readable when the appsink has something: Pull waits
	// on it in Go's poller. A cgo call that blocks for long makes the Go
	// runtime hand its P off and keeps its monitor thread waking every
	// 20 µs; with an encoder per guest and variant waiting, that was more
	// CPU than the encoders (measured with perf).
	notify *os.File
}

// Sample is one buffer pulled from the appsink.
type Sample struct {
	Data     []byte
	PTS      time.Duration // -1 when unknown
	Duration time.Duration // -1 when unknown
	Key      bool          // not a delta unit: decodable on its own
}

// ErrClosed is returned by calls on a closed pipeline.
var ErrClosed = errors.New("pipeline closed")

// Launch parses desc (gst-launch syntax). It does not start it.
func Launch(desc string) (*Pipeline, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	cs := C.CString(desc)
	defer C.free(unsafe.Pointer(cs))
	var cerr *C.char
	lp := C.loco_launch(cs, &cerr)
	if lp == nil {
		msg := C.GoString(cerr)
		C.g_free(C.gpointer(cerr))
		return nil, fmt.Errorf("parsing GStreamer pipeline: %s", msg)
	}
	p := &Pipeline{p: lp}
	if lp.notify_rd >= 0 {
		p.notify = os.NewFile(uintptr(lp.notify_rd), "appsink-notify")
	}
	return p, nil
}

// Start sets the pipeline playing.
func (p *Pipeline) Start() error {
	lp, done, err := p.acquire()
	if err != nil {
		return err
	}
	defer done()
	if C.loco_play(lp) == 0 {
		return errors.New("the pipeline refused to start playing (see the bus error)")
	}
	return nil
}

// Pull waits up to timeout for the next sample. It returns (nil, nil) on
// timeout and io.EOF at the end of the stream. It waits in Go, not in C.
func (p *Pipeline) Pull(timeout time.Duration) (*Sample, error) {
	deadline := time.Now().Add(timeout)
	var buf [64]byte
	for {
		s, err := p.tryPull()
		if s != nil || err != nil {
			return s, err
		}
		if time.Until(deadline) <= 0 {
			return nil, nil
		}
		if err := p.notify.SetReadDeadline(deadline); err != nil {
			return nil, ErrClosed
		}
		// Drains every notification so far; a sample already pulled only
		// costs a spurious round.
		if _, err := p.notify.Read(buf[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil
			}
			return nil, ErrClosed
		}
	}
}

// tryPull takes a sample if the appsink has one, without waiting.
func (p *Pipeline) tryPull() (*Sample, error) {
	lp, done, err := p.acquire()
	if err != nil {
		return nil, err
	}
	defer done()
	if lp.sink == nil || p.notify == nil {
		return nil, errors.New("the pipeline has no appsink named \"out\"")
	}
	var s C.LocoSample
	if C.loco_pull(lp, 0, &s) == 0 {
		if s.eos != 0 {
			return nil, io.EOF
		}
		return nil, nil
	}
	out := &Sample{
		Data:     C.GoBytes(unsafe.Pointer(s.data), C.int(s.size)),
		PTS:      time.Duration(s.pts),
		Duration: time.Duration(s.duration),
		Key:      s.key != 0,
	}
	C.g_free(C.gpointer(s.data))
	return out, nil
}

// Push hands raw bytes to the appsrc "in".
func (p *Pipeline) Push(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	lp, done, err := p.acquire()
	if err != nil {
		return err
	}
	defer done()
	if lp.src == nil {
		return errors.New("the pipeline has no appsrc named \"in\"")
	}
	if C.loco_push(lp, unsafe.Pointer(&data[0]), C.gsize(len(data))) == 0 {
		return errors.New("the appsrc refused the buffer (pipeline stopping?)")
	}
	return nil
}

// ForceKeyUnit asks the encoder upstream of the appsink for a key frame
// with its headers.
func (p *Pipeline) ForceKeyUnit() {
	lp, done, err := p.acquire()
	if err != nil {
		return
	}
	defer done()
	if lp.sink != nil {
		C.loco_force_key_unit(lp)
	}
}

// EncodeTime is the total time the element named "enc" spent on frames, and
// how many frames that covers.
func (p *Pipeline) EncodeTime() (time.Duration, uint64) {
	lp, done, err := p.acquire()
	if err != nil {
		return 0, 0
	}
	defer done()
	return time.Duration(C.loco_enc_total_us(lp)) * time.Microsecond, uint64(C.loco_enc_count(lp))
}

// BusKind is what a bus message says.
type BusKind int

const (
	BusNone BusKind = iota
	BusError
	BusEOS
	BusWarning
)

// Bus waits up to timeout for an error, warning or end of stream.
func (p *Pipeline) Bus(timeout time.Duration) (BusKind, string) {
	lp, done, err := p.acquire()
	if err != nil {
		return BusEOS, err.Error()
	}
	defer done()
	var text *C.char
	k := C.loco_bus(lp, C.gint64(timeout.Nanoseconds()), &text)
	if k == 0 {
		return BusNone, ""
	}
	msg := C.GoString(text)
	C.g_free(C.gpointer(text))
	return BusKind(k), msg
}

// acquire returns the C pipeline for one call, unless Close has begun.
func (p *Pipeline) acquire() (*C.LocoPipe, func(), error) {
	p.use.RLock()
	if p.closed.Load() {
		p.use.RUnlock()
		return nil, nil, ErrClosed
	}
	return p.p, p.use.RUnlock, nil
}

// Close stops the pipeline and frees it. It is safe while other goroutines
// are in Pull, Push or Bus: stopping the pipeline makes their calls return
// (each is bounded by its timeout anyway), and the pipeline is freed only
// after they are out.
func (p *Pipeline) Close() {
	if p.closed.Swap(true) {
		return
	}
	C.loco_stop(p.p)
	if p.notify != nil {
		p.notify.Close() // a Pull waiting on it returns ErrClosed
	}
	p.use.Lock()
	defer p.use.Unlock()
	C.loco_free(p.p)
	p.p = nil
}
