package streamer

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// playoutDelayURI is the RTP header extension through which a sender tells
// a WebRTC receiver how long it may hold frames before rendering them.
const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// registerPlayoutDelay makes every video packet say "render at once"
// (minimum and maximum playout delay 0). Chromium then skips its render
// smoothing and shows each frame as soon as it is decoded, which is what a
// game on a LAN wants: without it, one large frame (a screen that changed
// all at once) among the tiny frames of a static screen grows Chromium's
// jitter estimate and delays everything after it. Receivers that did not
// offer the extension never see it.
func registerPlayoutDelay(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return err
	}
	ir.Add(playoutDelayFactory{})
	return nil
}

type playoutDelayFactory struct{}

func (playoutDelayFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &playoutDelay{}, nil
}

type playoutDelay struct{ interceptor.NoOp }

// zeroPlayoutDelay is the extension's payload for min = max = 0.
var zeroPlayoutDelay, _ = rtp.PlayoutDelayExtension{}.Marshal()

func (*playoutDelay) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	id := 0
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == playoutDelayURI {
			id = e.ID
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if err := h.SetExtension(uint8(id), zeroPlayoutDelay); err != nil {
			return 0, err
		}
		return w.Write(h, payload, a)
	})
}
