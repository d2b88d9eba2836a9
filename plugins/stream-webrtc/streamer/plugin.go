package streamer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/locolan/loco/plugins/stream-webrtc/gst"
	"github.com/locolan/loco/plugins/stream-webrtc/rfb"
	"github.com/locolan/loco/sdk"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

const pluginVersion = "0.1.0"

// maxViewersPerGuest bounds what one guest's stream fans out to: each
// viewer costs a DTLS/SRTP session and its share of the plugin's upload.
const maxViewersPerGuest = 16

type plugin struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	configured bool
	cfg        config
	api        *webrtc.API
	guests     map[uint32]*guest
	sessions   map[string]*viewer
}

var (
	_ sdk.Stream = (*plugin)(nil)
)

// New makes the plugin, ready for sdk.Serve.
func New() *plugin {
	ctx, cancel := context.WithCancel(context.Background())
	return &plugin{ctx: ctx, cancel: cancel, guests: map[uint32]*guest{}, sessions: map[string]*viewer{}}
}

func (p *plugin) Info() sdk.Info {
	return sdk.Info{Name: "webrtc", Kind: sdk.KindStream, Version: pluginVersion,
		Capabilities: []string{"whep", "h264", "vp8", "opus"}}
}

func (p *plugin) ConfigSchema() sdk.Schema { return schema() }

// Configure validates the block and checks that GStreamer has every element
// the pipelines need, so a missing Debian package is reported at `loco
// validate`/`run` time with its name rather than when the first viewer comes.
func (p *plugin) Configure(_ context.Context, cfg sdk.Config, _ sdk.Cluster) error {
	var raw rawConfig
	if err := cfg.Decode(&raw); err != nil {
		return err
	}
	c, err := parseConfig(raw)
	if err != nil {
		return err
	}
	if err := gst.Init(); err != nil {
		return fmt.Errorf("%w (install Debian's libgstreamer1.0-0 and gstreamer1.0-plugins-*)", err)
	}
	var missing []string
	for el, pkg := range requiredElements(c) {
		if !gst.HasElement(el) {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", el, pkg))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("GStreamer lacks elements this plugin needs: %s", strings.Join(missing, ", "))
	}
	api, err := newAPI(c)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.configured && p.cfg.equal(c) {
		return nil
	}
	p.cfg, p.api, p.configured = c, api, true
	logger.Info("configured", "codec", c.codec, "framerate", c.framerate, "bitrate_kbps", c.bitrateKbps,
		"audio", c.audio, "remote", c.remote())
	return nil
}

// newAPI sets up pion for the configuration. By default media flows on
// loopback only: the browser that shows the dashboard runs on this host,
// and no guest's screen leaves the machine unless the spec says so
// (public_ip or ice_server).
func newAPI(c config) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	video := webrtc.RTPCodecParameters{RTPCodecCapability: videoCapability(c.codec), PayloadType: 102}
	if err := m.RegisterCodec(video, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("registering the video codec: %w", err)
	}
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: audioCapability(), PayloadType: 111}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("registering Opus: %w", err)
	}
	ir := &interceptor.Registry{}
	// NACK, RTCP reports and congestion feedback: what remote viewers on a
	// lossy link need; cheap on loopback.
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("registering RTP interceptors: %w", err)
	}
	if err := registerPlayoutDelay(m, ir); err != nil {
		return nil, fmt.Errorf("registering the playout-delay extension: %w", err)
	}
	se := webrtc.SettingEngine{}
	// mDNS would send multicast queries onto the LAN for the browser's
	// obfuscated candidates; the browser's checks reach us anyway.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if c.portMin != 0 {
		if err := se.SetEphemeralUDPPortRange(c.portMin, c.portMax); err != nil {
			return nil, &sdk.AttrError{Path: []string{"udp_ports"}, Summary: "Bad port range", Detail: err.Error()}
		}
	}
	if c.remote() {
		if c.publicIP != "" {
			se.SetNAT1To1IPs([]string{c.publicIP}, webrtc.ICECandidateTypeHost)
		}
	} else {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func videoCapability(codec string) webrtc.RTPCodecCapability {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if codec == "vp8" {
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}
	}
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: fb,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
}

func audioCapability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1;stereo=1"}
}

// Attach registers the guest and returns its audio backend. The arguments
// depend only on the configuration and the guest's state directory, so a
// restarted plugin gives the same ones.
func (p *plugin) Attach(_ context.Context, in sdk.Instance) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.configured {
		return nil, fmt.Errorf("stream plugin: Attach before Configure: %w", sdk.ErrNotReady)
	}
	network, addr, err := rfb.Target(in.VNC)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %v: %w", in.Name, err, sdk.ErrInvalid)
	}
	var args []string
	fifo := filepath.Join(in.StateDir, "audio.fifo")
	if p.cfg.audio {
		if args, err = audioArgs(fifo); err != nil {
			return nil, fmt.Errorf("guest %s: %v: %w", in.Name, err, sdk.ErrInvalid)
		}
	}
	g := p.guests[in.Index]
	if g != nil && g.in == in {
		return args, nil
	}
	if g != nil {
		g.stop()
	}
	g, err = newGuest(p, p.cfg, in, network, addr)
	if err != nil {
		return nil, err
	}
	if p.cfg.audio {
		// The FIFO must exist before QEMU starts: QEMU would otherwise
		// create a regular file there and fill the disk with sound.
		if err := mkdirFIFO(in.StateDir, fifo); err != nil {
			return nil, fmt.Errorf("guest %s: %w", in.Name, err)
		}
		g.startAudio(fifo)
	}
	p.guests[in.Index] = g
	logger.Info("guest attached", "guest", in.Name, "vnc", in.VNC, "audio", p.cfg.audio)
	return args, nil
}

func (p *plugin) config() (config, *webrtc.API) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg, p.api
}

// Offer answers a WHEP offer for one variant of a guest's stream.
func (p *plugin) Offer(ctx context.Context, req sdk.OfferRequest) (string, string, error) {
	p.mu.Lock()
	g := p.guests[req.Instance]
	p.mu.Unlock()
	if g == nil {
		return "", "", fmt.Errorf("no guest with index %d is attached to the stream plugin: %w", req.Instance, sdk.ErrNoInstance)
	}
	name := req.Variant
	if name == "" {
		name = sdk.VariantFull
	}
	if name != sdk.VariantFull && name != sdk.VariantThumb {
		return "", "", fmt.Errorf("variant %.40q: want %q or %q: %w", name, sdk.VariantFull, sdk.VariantThumb, sdk.ErrInvalid)
	}
	if n := g.viewerCount(); n >= maxViewersPerGuest {
		return "", "", fmt.Errorf("guest %s already has %d viewers: %w", g.in.Name, n, sdk.ErrBusy)
	}
	id, err := newSessionID()
	if err != nil {
		return "", "", err
	}
	v := g.variant(name)
	vw, answer, err := newViewer(ctx, p, v, id, req.SDP)
	if err != nil {
		return "", "", err
	}
	p.mu.Lock()
	p.sessions[id] = vw
	p.mu.Unlock()
	v.addViewer(vw)
	logger.Info("viewer joined", "guest", g.in.Name, "variant", name, "session", id, "viewers", g.viewerCount())
	return answer, id, nil
}

// Hangup ends a WHEP session.
func (p *plugin) Hangup(_ context.Context, sessionID string) error {
	p.mu.Lock()
	v := p.sessions[sessionID]
	p.mu.Unlock()
	if v == nil {
		return fmt.Errorf("no stream session %.40q: %w", sessionID, sdk.ErrNotFound)
	}
	v.close("hung up")
	return nil
}

// dropSession forgets a viewer; called once per viewer when it closes.
func (p *plugin) dropSession(v *viewer) {
	p.mu.Lock()
	delete(p.sessions, v.id)
	p.mu.Unlock()
	v.v.removeViewer(v)
	logger.Info("viewer left", "guest", v.v.g.in.Name, "variant", v.v.name, "session", v.id, "viewers", v.v.g.viewerCount())
}

func (p *plugin) Stats(context.Context) ([]sdk.StreamStats, error) {
	p.mu.Lock()
	guests := make([]*guest, 0, len(p.guests))
	for _, g := range p.guests {
		guests = append(guests, g)
	}
	p.mu.Unlock()
	sort.Slice(guests, func(i, j int) bool { return guests[i].in.Index < guests[j].in.Index })
	out := make([]sdk.StreamStats, 0, 2*len(guests))
	for _, g := range guests {
		out = append(out, g.stats()...)
	}
	return out, nil
}

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
