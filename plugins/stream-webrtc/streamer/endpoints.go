package streamer

import (
	"context"
	"fmt"

	"github.com/locolan/loco/sdk"
)

var _ sdk.StreamEndpoints = (*plugin)(nil)

// Endpoints: WHEP, and the guest's own QEMU VNC display as RFB. The VNC
// socket is there for every guest anyway (it is what this plugin captures
// from when QEMU has no D-Bus display); listing it lets any VNC client
// (noVNC through GET /api/instances/{id}/rfb) watch a WebRTC guest too,
// which is how `loco bench --scenario glass-to-glass` puts both paths side
// by side on one guest. The dashboard plays WHEP first.
func (p *plugin) Endpoints(_ context.Context, instance uint32) ([]sdk.Endpoint, error) {
	p.mu.Lock()
	g := p.guests[instance]
	p.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("no guest with index %d is attached to the stream plugin: %w", instance, sdk.ErrNoInstance)
	}
	return []sdk.Endpoint{
		{Protocol: sdk.ProtocolWHEP, Healthy: true},
		{Protocol: sdk.ProtocolRFB, Dial: g.in.VNC, Healthy: true, Status: "QEMU VNC"},
	}, nil
}
