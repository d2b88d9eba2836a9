package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/locolan/loco/sdk"
)

// ViewerEndpoint is one way to watch a guest, as the API shows it: URL is
// the API path of the endpoint (WHEP, RFB); a Moonlight endpoint has the
// address and port a client adds instead, and PairURL when it pairs.
type ViewerEndpoint struct {
	Protocol string `json:"protocol"`
	URL      string `json:"url,omitempty"`
	Address  string `json:"address,omitempty"`
	Port     int    `json:"port,omitempty"`
	PairURL  string `json:"pair_url,omitempty"`
	Healthy  bool   `json:"healthy"`
	Status   string `json:"status,omitempty"`
}

// GuestStream is GET /api/instances/{id}/stream.
type GuestStream struct {
	Index     int              `json:"index"`
	Name      string           `json:"name"`
	Plugin    string           `json:"plugin"`
	Endpoints []ViewerEndpoint `json:"endpoints"`
}

func (s *Server) streamEndpoints(w http.ResponseWriter, r *http.Request) {
	idx, ok := s.streamInstance(w, r.PathValue("id"))
	if !ok {
		return
	}
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	eps, err := p.StreamEndpoints(ctx, idx)
	if err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	out := GuestStream{Index: int(idx), Name: s.b.Plan().Guests[idx].Name, Plugin: s.pluginName(sdk.KindStream), Endpoints: []ViewerEndpoint{}}
	base := fmt.Sprintf("/api/instances/%d/", idx)
	for _, e := range eps {
		v := ViewerEndpoint{Protocol: e.Protocol, Healthy: e.Healthy, Status: e.Status}
		switch e.Protocol {
		case sdk.ProtocolWHEP:
			v.URL = base + "whep"
		case sdk.ProtocolRFB:
			v.URL = base + "rfb"
		case sdk.ProtocolMoonlight:
			v.Address, v.Port = e.Address, e.Port
			if e.Pairing {
				v.PairURL = base + "pair"
			}
		default:
			// A protocol this core has no route for: listed, so a newer
			// dashboard or a person can see it, but nothing is proxied.
		}
		out.Endpoints = append(out.Endpoints, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// rfbDial finds the RFB endpoint of a guest and checks that it is a unix
// socket inside that guest's own directory: the WebSocket may reach that
// guest's display and nothing else, whatever a plugin answers.
func rfbDial(eps []sdk.Endpoint, guestDir string) (string, error) {
	for _, e := range eps {
		if e.Protocol != sdk.ProtocolRFB {
			continue
		}
		path, ok := strings.CutPrefix(e.Dial, "unix:")
		if !ok || !filepath.IsAbs(path) {
			return "", fmt.Errorf("the stream plugin's RFB endpoint %q is not a unix socket path", e.Dial)
		}
		rel, err := filepath.Rel(guestDir, filepath.Clean(path))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("the stream plugin's RFB endpoint %s is outside the guest's directory %s: refused", path, guestDir)
		}
		return path, nil
	}
	return "", fmt.Errorf("the stream plugin serves no RFB for this guest: %w", sdk.ErrUnsupported)
}

// rfbProxy carries RFB between a WebSocket (noVNC) and the guest's display.
func (s *Server) rfbProxy(w http.ResponseWriter, r *http.Request) {
	idx, ok := s.streamInstance(w, r.PathValue("id"))
	if !ok {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeError(w, http.StatusBadRequest, "this is a WebSocket endpoint (RFB, for noVNC)")
		return
	}
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	eps, err := p.StreamEndpoints(ctx, idx)
	cancel()
	if err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	path, err := rfbDial(eps, s.b.Plan().Guests[idx].Dir)
	if err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	var d net.Dialer
	dctx, dcancel := context.WithTimeout(r.Context(), 5*time.Second)
	vnc, err := d.DialContext(dctx, "unix", path)
	dcancel()
	if err != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("the guest's display is not there (stopped or restarting): %v", err))
		return
	}
	defer vnc.Close()
	// noVNC asks for the "binary" subprotocol when told to; plain is fine too.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(1 << 20)
	wctx, wcancel := context.WithCancel(r.Context())
	defer wcancel()
	ws := websocket.NetConn(wctx, c, websocket.MessageBinary)
	defer ws.Close()
	s.log.Info("RFB viewer connected", "instance", idx, "remote", r.RemoteAddr)
	done := make(chan struct{}, 2)
	go func() { io.Copy(vnc, ws); done <- struct{}{} }()
	go func() { io.Copy(ws, vnc); done <- struct{}{} }()
	<-done
	s.log.Info("RFB viewer gone", "instance", idx)
}

// maxPairBody bounds a pairing request: a PIN and a name.
const maxPairBody = 4 << 10

func (s *Server) pair(w http.ResponseWriter, r *http.Request) {
	idx, ok := s.streamInstance(w, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		PIN  string `json:"pin"`
		Name string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxPairBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `want {"pin": "1234", "name": "living-room"}: `+err.Error())
		return
	}
	if len(req.PIN) != 4 || strings.Trim(req.PIN, "0123456789") != "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("pin %.12q: Moonlight shows four digits", req.PIN))
		return
	}
	p := s.streamPlugin(w)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := p.Pair(ctx, sdk.PairRequest{Instance: idx, PIN: req.PIN, ClientName: req.Name}); err != nil {
		writePluginError(w, r, "stream", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"paired": true, "instance": idx})
}

// pluginName is the name of the cluster's plugin of a kind, or "".
func (s *Server) pluginName(kind string) string {
	for _, p := range s.b.Plugins() {
		if p.Kind == kind {
			return p.Name
		}
	}
	return ""
}
