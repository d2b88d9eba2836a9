package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics counts the API's requests by route (the mux pattern, so
// /api/instances/3/input and /api/instances/4/input are one series) and
// status code.
type requestMetrics struct {
	total   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loco_api_requests_total", Help: "API requests by route and HTTP status.",
		}, []string{"route", "code"}),
		// Seconds until the handler returned: for WHEP a plugin round trip,
		// for the WebSocket and capture routes the whole session.
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loco_api_request_duration_seconds", Help: "Time the API took to answer, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route"}),
	}
	reg.MustRegister(m.total, m.seconds)
	return m
}

// track starts measuring one request; call the returned func when it is
// answered. Requests refused for their token count under their route too.
func (s *Server) track(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	_, route := s.mux.Handler(r)
	if route == "" || route == "/" {
		route = "other" // unknown paths must not make a series each
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	start := time.Now()
	return rec, func() {
		s.reqs.total.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.reqs.seconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

// statusRecorder remembers the status; it keeps Flush and Hijack working
// for the pcap stream and the input WebSocket.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the connection cannot be taken over: %w", http.ErrNotSupported)
	}
	r.code, r.wroteHeader = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
