package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/locolan/loco/core/pluginhost"
	"github.com/locolan/loco/core/web"
	"github.com/locolan/loco/sdk"
)

// streamRoutes adds WHEP signalling (proxied to the stream plugin), the
// stream statistics and the dashboard.
//
// WHEP (draft-ietf-wish-whep): the viewer POSTs its SDP offer and gets 201
// with the answer and a Location to DELETE when it hangs up. Answers carry
// all ICE candidates, so PATCH (trickle ICE) is not supported.
func (s *Server) streamRoutes() {
	s.mux.HandleFunc("POST /api/instances/{id}/whep", s.whepOffer)
	s.mux.HandleFunc("DELETE /api/instances/{id}/whep/{session}", s.whepHangup)
	s.mux.HandleFunc("PATCH /api/instances/{id}/whep/{session}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "DELETE")
		writeError(w, http.StatusMethodNotAllowed, "trickle ICE is not supported: the answer already carries every candidate")
	})
	s.mux.HandleFunc("GET /api/streams", s.streamStats)
	s.mux.Handle("GET /{$}", web.Index(s.token))
	s.mux.Handle("GET /ui/", web.Static())
}

// maxOfferBytes bounds an SDP offer; real ones are a few kilobytes.
const maxOfferBytes = 256 << 10

// streamPlugin is the cluster's stream plugin, or an error answer.
func (s *Server) streamPlugin(w http.ResponseWriter) *pluginhost.Plugin {
	p := s.b.Plugins().Get(sdk.KindStream)
	if p == nil {
		writeError(w, http.StatusNotFound, `this cluster has no stream plugin: add stream "webrtc" {} to the spec`)
	}
	return p
}

// streamInstance reads {id}: a guest's index or its name.
func (s *Server) streamInstance(w http.ResponseWriter, id string) (uint32, bool) {
	p := s.b.Plan()
	if p != nil {
		if n, err := strconv.Atoi(id); err == nil && n >= 0 && n < len(p.Guests) {
			return uint32(n), true
		}
		for _, g := range p.Guests {
			if g.Name == id {
				return uint32(g.Index), true
			}
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no instance %q", id))
	return 0, false
}

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "a WHEP offer is an SDP body with Content-Type: application/sdp")
		return
	}
	idx, ok := s.streamInstance(w, r.PathValue("id"))
	if !ok {
		return
	}
	variant := r.URL.Query().Get("variant")
	if variant == "" {
		variant = sdk.VariantFull
	}
	if !slices.Contains(sdk.Variants, variant) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("variant %.40q: want one of %v", variant, sdk.Variants))
		return
	}
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the offer: "+err.Error())
		return
	}
	if len(body) > maxOfferBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "the offer is larger than 256 KiB")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	answer, session, err := p.Client().Offer(ctx, sdk.OfferRequest{Instance: idx, SDP: string(body), Variant: variant})
	if err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", fmt.Sprintf("/api/instances/%d/whep/%s", idx, session))
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (s *Server) whepHangup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.streamInstance(w, r.PathValue("id")); !ok {
		return
	}
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := p.Client().Hangup(ctx, r.PathValue("session")); err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// StreamStats is one variant of one guest's stream as /api/streams shows it.
type StreamStats struct {
	Index      int     `json:"index"`
	Name       string  `json:"name"`
	Variant    string  `json:"variant"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	FramesIn   uint64  `json:"frames_in"`
	FramesOut  uint64  `json:"frames_out"`
	Repeats    uint64  `json:"repeats"`
	FPS        float64 `json:"fps"`
	BitrateBPS float64 `json:"bitrate_bps"`
	EncodeMs   float64 `json:"encode_ms"`
	Viewers    uint32  `json:"viewers"`
	KeyFrames  uint64  `json:"key_frames"`
}

func (s *Server) streamStats(w http.ResponseWriter, r *http.Request) {
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	stats, err := p.Client().StreamStats(ctx)
	if err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	pl := s.b.Plan()
	out := []StreamStats{}
	for _, st := range stats {
		o := StreamStats{Index: int(st.Instance), Variant: st.Variant, Width: st.Width, Height: st.Height,
			FramesIn: st.FramesIn, FramesOut: st.FramesOut, Repeats: st.Repeats, FPS: st.FPS,
			BitrateBPS: st.BitrateBPS, EncodeMs: st.EncodeMs, Viewers: st.Viewers, KeyFrames: st.KeyFrames}
		if pl != nil && int(st.Instance) < len(pl.Guests) {
			o.Name = pl.Guests[st.Instance].Name
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, out)
}
