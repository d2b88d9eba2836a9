package lan

import (
	"context"
	"errors"
	"time"
)

// Uplink is a port of the segment that is not a guest: a plugin that
// carries the LAN further (a tunnel to another host's segment) sends the
// frames it receives into the switch with Send and takes the frames the
// switch forwards to it with Recv. The switch treats it as one more port:
// it learns the addresses behind it, floods to it, and forwards unicast to
// it once learned; the frames are no guest's, so LAN status leaves it out
// and capture marks its frames FromHost, like the station's.
type Uplink struct {
	seg  *Segment
	id   int
	port *Port
}

// AddUplink adds an uplink named name (for logs). It may be called at any
// time; it lives as long as the segment.
func (s *Segment) AddUplink(name string) *Uplink {
	id, p := s.sw.addUplink(name, s.cfg.queueFrames)
	s.log.Info("uplink added", "uplink", name)
	return &Uplink{seg: s, id: id, port: p}
}

// Send forwards frame f into the switch as if it entered on the uplink.
// The switch keeps f: the caller must not reuse it.
func (u *Uplink) Send(f []byte) { u.seg.sw.Ingress(u.id, f) }

// errSegmentClosed is what Recv returns once the segment is closed.
var errSegmentClosed = errors.New("the LAN was reconfigured")

// Recv returns the next frame the switch forwards to the uplink. A frame
// that waited longer than a second is dropped (counted as expired), as for
// a guest: the far side gets fresh frames, not a backlog. It returns
// ctx's error when ctx ends, and an error when the segment is closed.
func (u *Uplink) Recv(ctx context.Context) ([]byte, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-u.seg.ctx.Done():
			return nil, errSegmentClosed
		case q := <-u.port.queue:
			if time.Since(q.at) > maxQueueDelay {
				u.seg.sw.drop(dropExpired, u.port)
				continue
			}
			u.port.tx.add(q.f)
			return q.f, nil
		}
	}
}
