package streamer

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
)

// Defaults: what the streaming facts measured on the reference machine
// suggest for nine 800x600 guests on two cores.
const (
	defaultCodec     = "h264"
	defaultFramerate = 30
	defaultBitrate   = 2500 // kbit/s cap; a full-motion 800x600 screen takes 1-2 Mbit/s
)

func schema() sdk.Schema {
	iceServer := sdk.Schema{Attributes: []sdk.Attribute{
		sdk.Required("urls", cty.List(cty.String), `STUN or TURN URLs, e.g. ["stun:stun.example.org:3478"]`),
		sdk.Optional("username", cty.String, cty.StringVal(""), "TURN username"),
		sdk.Optional("credential", cty.String, cty.StringVal(""), "TURN password"),
	}}
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			sdk.Optional("codec", cty.String, cty.StringVal(defaultCodec), `video codec: "h264" (x264, constrained baseline) or "vp8"`),
			sdk.Optional("framerate", cty.Number, cty.NumberIntVal(defaultFramerate),
				"most frames per second of the full-size stream (1-60; thumbnails at most 10); frames are sent only when the screen changes, and a still screen once a second"),
			sdk.Optional("bitrate_kbps", cty.Number, cty.NumberIntVal(defaultBitrate),
				"video bitrate cap of the full-size stream in kbit/s (100-50000); thumbnails get an eighth, at least 150"),
			sdk.Optional("audio", cty.Bool, cty.True,
				"stream the guest's sound card (spec guest audio = sb16|ac97|hda) as Opus; adds QEMU's audiodev snd0"),
			sdk.Optional("public_ip", cty.String, cty.StringVal(""),
				"address remote viewers reach this host at; without it (and without ice_server) media flows on loopback only"),
			sdk.Optional("udp_ports", cty.String, cty.StringVal(""), `UDP port range for media, "MIN-MAX" (default: any ephemeral port)`),
		},
		Blocks: []sdk.Block{{Name: "ice_server", Nesting: sdk.NestingList, Body: iceServer,
			Description: "STUN/TURN servers for viewers that are not on this host"}},
	}
}

type rawICEServer struct {
	URLs       []string `cty:"urls"`
	Username   string   `cty:"username"`
	Credential string   `cty:"credential"`
}

type rawConfig struct {
	Codec      string         `cty:"codec"`
	Framerate  int            `cty:"framerate"`
	Bitrate    int            `cty:"bitrate_kbps"`
	Audio      bool           `cty:"audio"`
	PublicIP   string         `cty:"public_ip"`
	UDPPorts   string         `cty:"udp_ports"`
	ICEServers []rawICEServer `cty:"ice_server"`
}

// config is the validated configuration.
type config struct {
	codec       string
	framerate   int
	bitrateKbps int
	audio       bool
	publicIP    string
	portMin     uint16
	portMax     uint16
	iceServers  []rawICEServer
}

// remote says whether viewers on other hosts are expected: then media may
// use every interface, not just loopback.
func (c config) remote() bool { return c.publicIP != "" || len(c.iceServers) > 0 }

func (c config) equal(o config) bool {
	return fmt.Sprint(c) == fmt.Sprint(o)
}

// parseConfig checks the block; every problem names its attribute.
func parseConfig(r rawConfig) (config, error) {
	var errs []error
	bad := func(attr, summary, detail string, args ...any) {
		errs = append(errs, &sdk.AttrError{Path: []string{attr}, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	c := config{codec: r.Codec, framerate: r.Framerate, bitrateKbps: r.Bitrate, audio: r.Audio, iceServers: r.ICEServers}
	if c.codec != "h264" && c.codec != "vp8" {
		bad("codec", "Unknown codec", `%q: choose "h264" or "vp8"`, r.Codec)
	}
	if c.framerate < 1 || c.framerate > 60 {
		bad("framerate", "Frame rate out of range", "%d: use 1-60", r.Framerate)
	}
	if c.bitrateKbps < 100 || c.bitrateKbps > 50000 {
		bad("bitrate_kbps", "Bitrate out of range", "%d kbit/s: use 100-50000", r.Bitrate)
	}
	if r.PublicIP != "" {
		a, err := netip.ParseAddr(r.PublicIP)
		if err != nil {
			bad("public_ip", "Not an IP address", "%q: %v", r.PublicIP, err)
		} else {
			c.publicIP = a.String()
		}
	}
	if r.UDPPorts != "" {
		lo, hi, ok := strings.Cut(r.UDPPorts, "-")
		min, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		max, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if !ok || err1 != nil || err2 != nil || min < 1024 || max < min {
			bad("udp_ports", "Bad port range", `%q: write "MIN-MAX" with 1024 <= MIN <= MAX <= 65535`, r.UDPPorts)
		} else {
			c.portMin, c.portMax = uint16(min), uint16(max)
		}
	}
	for i, s := range r.ICEServers {
		if len(s.URLs) == 0 {
			bad("ice_server", "ICE server without URLs", "ice_server block %d has an empty urls list", i+1)
		}
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				bad("ice_server", "Not a STUN or TURN URL", "%q: must start with stun:, turn: or turns:", u)
			}
		}
	}
	return c, errors.Join(errs...)
}
