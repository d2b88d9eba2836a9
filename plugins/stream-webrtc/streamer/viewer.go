package streamer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/locolan/loco/sdk"
)

// viewer is one WHEP session: a browser's peer connection that receives
// one variant's shared video track and the guest's audio.
type viewer struct {
	id   string
	p    *plugin
	v    *variant
	pc   *webrtc.PeerConnection
	once sync.Once
	// connected is set once the peer connection has connected.
	connected atomic.Bool
}

// gatherTimeout bounds ICE gathering for the answer. WHEP answers carry
// every candidate (no trickle); on loopback gathering takes milliseconds,
// with STUN servers up to a few seconds.
const gatherTimeout = 5 * time.Second

// connectTimeout frees the slot of a viewer that took an answer but never
// connected (a WHEP client that gave up, or one that only fills slots):
// without it pion waits ~30 s before it calls the connection failed, and
// maxViewersPerGuest such offers lock real viewers out. Connecting takes
// milliseconds on loopback and a few round trips through STUN/TURN.
func connectTimeout(c config) time.Duration {
	if c.remote() {
		return 15 * time.Second
	}
	return 5 * time.Second
}

func newViewer(ctx context.Context, p *plugin, va *variant, id, offer string) (*viewer, string, error) {
	g := va.g
	cfg, api := p.config()
	var servers []webrtc.ICEServer
	for _, s := range cfg.iceServers {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	if err != nil {
		return nil, "", fmt.Errorf("creating a peer connection: %w", err)
	}
	v := &viewer{id: id, p: p, v: va, pc: pc}
	fail := func(kind error, format string, a ...any) (*viewer, string, error) {
		pc.Close()
		return nil, "", fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), kind)
	}
	tracks := []*webrtc.TrackLocalStaticSample{va.track}
	if cfg.audio {
		tracks = append(tracks, g.audio)
	}
	for _, t := range tracks {
		sender, err := pc.AddTrack(t)
		if err != nil {
			return fail(errInternal, "adding the %s track: %v", t.Kind(), err)
		}
		go v.readRTCP(sender)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		logger.Debug("viewer connection", "guest", g.in.Name, "session", id, "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			v.connected.Store(true)
			// A new viewer can only start decoding at a key frame.
			va.requestKeyFrame()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.close("connection " + s.String())
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(sdk.ErrInvalid, "the offer is not usable: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(sdk.ErrInvalid, "cannot answer the offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(errInternal, "setting the answer: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
		logger.Warn("ICE gathering did not finish; answering with the candidates so far", "guest", g.in.Name)
	case <-ctx.Done():
		return fail(context.Canceled, "the offer was withdrawn: %v", ctx.Err())
	}
	time.AfterFunc(connectTimeout(cfg), func() {
		if !v.connected.Load() {
			v.close("did not connect within " + connectTimeout(cfg).String())
		}
	})
	return v, pc.LocalDescription().SDP, nil
}

// readRTCP turns the viewer's picture loss reports into key frame requests;
// reading also keeps pion's interceptors (NACK, reports) running.
func (v *viewer) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.v.requestKeyFrame()
			}
		}
	}
}

func (v *viewer) close(why string) {
	v.once.Do(func() {
		logger.Debug("closing viewer", "guest", v.v.g.in.Name, "session", v.id, "why", why)
		go v.pc.Close() // Close waits for pion's goroutines; not from its own callback
		v.p.dropSession(v)
	})
}

// errInternal marks the plugin's own failures: no sentinel, so the host
// reports them as the plugin's fault.
var errInternal = errors.New("stream plugin")
