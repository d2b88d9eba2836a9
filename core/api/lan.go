package api

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/locolan/loco/sdk"
)

// Capture trailers: how many frames the response holds, and how many the
// capture lost because the client read too slowly.
const (
	trailerFrames  = TrailerFrames
	trailerDropped = TrailerDropped
)

// lanCapture streams the frames entering the LAN as a pcap file (Ethernet
// link type), written frame by frame so that a client may stop reading at
// any time and keep a valid file.
//
// Query: instance=N|NAME (repeatable: frames from or to those guests,
// broadcasts included; default all), duration=30s, count=N, snaplen=N.
func (s *Server) lanCapture(w http.ResponseWriter, r *http.Request) {
	p := s.b.Network()
	if p == nil {
		writeError(w, http.StatusNotFound, noNetworkPlugin)
		return
	}
	q := r.URL.Query()
	var req sdk.CaptureRequest
	for _, id := range q["instance"] {
		i, err := s.instance(id)
		if err != nil {
			writeError(w, http.StatusBadRequest, "instance="+shorten(id)+": "+err.Error())
			return
		}
		req.Instances = append(req.Instances, uint32(i))
	}
	count, snaplen := 0, 0
	var duration time.Duration
	for name, dst := range map[string]*int{"count": &count, "snaplen": &snaplen} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%s: want a whole number", name, shorten(v)))
				return
			}
			*dst = n
		}
	}
	if v := q.Get("duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("duration=%s: want a duration like 30s", shorten(v)))
			return
		}
		duration = d
	}
	req.Snaplen = uint32(snaplen)
	ctx := r.Context()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	stream, err := p.Capture(ctx, req)
	if err != nil {
		// sdk.ErrCaptureUnsupported wraps sdk.ErrUnsupported: 501.
		writePluginError(w, r, "network", err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Trailer", trailerFrames+", "+trailerDropped)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	pw := pcapgo.NewWriter(bw)
	link := uint32(65535)
	if snaplen > 0 {
		link = uint32(snaplen)
	}
	flush := func() {
		bw.Flush()
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	frames, dropped := 0, uint64(0)
	defer func() {
		w.Header().Set(trailerFrames, strconv.Itoa(frames))
		w.Header().Set(trailerDropped, strconv.FormatUint(dropped, 10))
	}()
	if err := pw.WriteFileHeader(link, layers.LinkTypeEthernet); err != nil {
		return
	}
	flush()
	for count == 0 || frames < count {
		f, err := stream.Recv()
		if err != nil {
			// The client left, the duration ran out, or the plugin went
			// away (it restarts): the file so far is complete either way.
			if ctx.Err() == nil {
				s.log.Warn("LAN capture ended early", "err", err)
			}
			return
		}
		dropped += f.Dropped
		ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Data), Length: int(f.Length)}
		if err := pw.WritePacket(ci, f.Data); err != nil {
			return
		}
		frames++
		flush()
	}
}
