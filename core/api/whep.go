package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/locolan/loco/sdk"
)

// WHEP (draft-ietf-wish-whep): the viewer POSTs its SDP offer and gets 201
// with the answer and a Location to DELETE when it hangs up. Answers carry
// all ICE candidates, so PATCH (trickle ICE) is not supported (405).

// maxOfferBytes bounds an SDP offer; real ones are a few kilobytes.
const maxOfferBytes = 256 << 10

// streamPlugin is the cluster's stream plugin, or an error answer.
func (s *Server) streamPlugin(w http.ResponseWriter) StreamPlugin {
	p := s.b.Stream()
	if p == nil {
		writeError(w, http.StatusNotFound, `this cluster has no stream plugin: add stream "webrtc" {} to the spec`)
	}
	return p
}

// streamInstance reads {id} (see instance), or answers 404.
func (s *Server) streamInstance(w http.ResponseWriter, id string) (uint32, bool) {
	i, err := s.instance(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return 0, false
	}
	return uint32(i), true
}

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request) {
	idx, ok := s.streamInstance(w, r.PathValue("id"))
	if !ok {
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "a WHEP offer is an SDP body with Content-Type: application/sdp")
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
	answer, session, err := p.Offer(ctx, sdk.OfferRequest{Instance: idx, SDP: string(body), Variant: variant})
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
	if err := p.Hangup(ctx, r.PathValue("session")); err != nil {
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
	stats, err := p.StreamStats(ctx)
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
