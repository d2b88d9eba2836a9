package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	networkv1 "github.com/locolan/loco/sdk/proto/loco/network/v1"
)

// LANStatus is the health of the segment.
type LANStatus struct {
	Healthy bool   `json:"healthy"`
	Summary string `json:"summary"`
	// HostMAC and HostIP are the plugin's own station on the segment (its
	// DHCP server and prober), if it has one.
	HostMAC string `json:"host_mac,omitempty"`
	HostIP  string `json:"host_ip,omitempty"`
	// Subnet is the DHCP subnet (CIDR); empty when DHCP is off.
	Subnet string `json:"subnet,omitempty"`
	// Drops counts frames the segment discarded, by reason.
	Drops map[string]uint64 `json:"drops,omitempty"`
	Ports []Port            `json:"ports"`
	// Links is the connectivity matrix: unicast traffic seen between guests.
	Links []Link `json:"links"`
	// Uplinks are the ports that carry the segment beyond this cluster (a
	// tunnel's peers); empty for a segment that ends at its guests.
	Uplinks []Uplink `json:"uplinks,omitempty"`
}

// Uplink is one far end of the segment. Rx is what came from it, Tx what
// went to it.
type Uplink struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Reachable: something arrived from it recently; LastSeenMillis is how
	// long ago, -1 for never.
	Reachable      bool   `json:"reachable"`
	LastSeenMillis int64  `json:"last_seen_ms"`
	RxFrames       uint64 `json:"rx_frames"`
	RxBytes        uint64 `json:"rx_bytes"`
	TxFrames       uint64 `json:"tx_frames"`
	TxBytes        uint64 `json:"tx_bytes"`
	// MACs are the addresses learned behind it.
	MACs []string `json:"macs"`
	// RTTMillis is the last round trip of the plugin's own heartbeat; 0
	// when unknown (a far end that does not answer them).
	RTTMillis float64 `json:"rtt_ms"`
}

// Port is one guest's place on the segment. Rx is what the guest sent into
// the segment, Tx what the segment delivered to it.
type Port struct {
	Instance  uint32   `json:"instance"`
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	IPs       []string `json:"ips"`
	LinkUp    bool     `json:"link_up"`
	RxFrames  uint64   `json:"rx_frames"`
	TxFrames  uint64   `json:"tx_frames"`
	RxBytes   uint64   `json:"rx_bytes"`
	TxBytes   uint64   `json:"tx_bytes"`
	Drops     uint64   `json:"drops"`
	Reachable bool     `json:"reachable"`
	RTTMillis float64  `json:"rtt_ms"`
	// FramesByEtherType counts rx plus tx frames by EtherType name.
	FramesByEtherType map[string]uint64  `json:"frames_by_ethertype"`
	RxByEtherType     map[string]Traffic `json:"rx_by_ethertype,omitempty"`
	TxByEtherType     map[string]Traffic `json:"tx_by_ethertype,omitempty"`
	// Peers are the instances this port exchanged unicast frames with.
	Peers []uint32 `json:"peers"`
	// LastSeenMillis is how long ago the guest sent a frame, -1 for never;
	// LastReplyMillis how long ago it answered a probe, -1 for never.
	LastSeenMillis  int64 `json:"last_seen_ms"`
	LastReplyMillis int64 `json:"last_reply_ms"`
}

// Traffic is a frame and byte count.
type Traffic struct {
	Frames uint64 `json:"frames"`
	Bytes  uint64 `json:"bytes"`
}

// Link is unicast traffic observed from one guest to another.
type Link struct {
	From   uint32 `json:"from"`
	To     uint32 `json:"to"`
	Frames uint64 `json:"frames"`
	Bytes  uint64 `json:"bytes"`
}

// NetworkCapture is optional for network plugins: one that can see the
// frames on its segment implements it, and loco offers `loco lan capture`.
// Without it the Capture RPC answers UNIMPLEMENTED.
type NetworkCapture interface {
	// Capture calls send with every frame entering the segment that req
	// selects, until ctx ends (nil) or send fails (its error).
	Capture(ctx context.Context, req CaptureRequest, send func(CapturedFrame) error) error
}

// CaptureRequest selects frames: those from or to Instances (broadcasts
// included), or all when empty; Snaplen > 0 truncates each frame's data.
type CaptureRequest struct {
	Instances []uint32
	Snaplen   uint32
}

// CapturedFrame is one frame as it entered the segment.
type CapturedFrame struct {
	Time time.Time
	Data []byte
	// Length is the frame's length before any snaplen cut.
	Length uint32
	// Ingress is the instance that sent it, unless FromHost: then the
	// plugin's own side of the segment did (its station, or an uplink to
	// beyond this cluster's guests).
	Ingress  uint32
	FromHost bool
	// Dropped counts frames this capture lost before this one because its
	// reader was too slow.
	Dropped uint64
}

// ErrCaptureUnsupported is what Client.Capture returns (wrapped) when the
// network plugin does not implement NetworkCapture.
var ErrCaptureUnsupported = fmt.Errorf("this network plugin cannot capture frames: %w", ErrUnsupported)

func lanStatusToProto(st LANStatus) *networkv1.StatusResponse {
	out := &networkv1.StatusResponse{Healthy: st.Healthy, Summary: st.Summary, HostMac: st.HostMAC,
		HostIp: st.HostIP, Subnet: st.Subnet, Drops: st.Drops}
	for _, p := range st.Ports {
		out.Ports = append(out.Ports, &networkv1.Port{
			Instance: p.Instance, Name: p.Name, Mac: p.MAC, Ips: p.IPs, LinkUp: p.LinkUp,
			RxFrames: p.RxFrames, TxFrames: p.TxFrames, RxBytes: p.RxBytes, TxBytes: p.TxBytes,
			Drops: p.Drops, Reachable: p.Reachable, RttMs: p.RTTMillis,
			FramesByEthertype: p.FramesByEtherType, Peers: p.Peers,
			RxByEthertype: trafficToProto(p.RxByEtherType), TxByEthertype: trafficToProto(p.TxByEtherType),
			LastSeenMs: p.LastSeenMillis, LastReplyMs: p.LastReplyMillis,
		})
	}
	for _, l := range st.Links {
		out.Links = append(out.Links, &networkv1.Link{From: l.From, To: l.To, Frames: l.Frames, Bytes: l.Bytes})
	}
	for _, u := range st.Uplinks {
		out.Uplinks = append(out.Uplinks, &networkv1.Uplink{Name: u.Name, Address: u.Address, Reachable: u.Reachable,
			LastSeenMs: u.LastSeenMillis, RxFrames: u.RxFrames, RxBytes: u.RxBytes, TxFrames: u.TxFrames,
			TxBytes: u.TxBytes, Macs: u.MACs, RttMs: u.RTTMillis})
	}
	return out
}

func lanStatusFromProto(r *networkv1.StatusResponse) LANStatus {
	st := LANStatus{Healthy: r.Healthy, Summary: r.Summary, HostMAC: r.HostMac, HostIP: r.HostIp,
		Subnet: r.Subnet, Drops: r.Drops, Ports: []Port{}, Links: []Link{}}
	for _, p := range r.Ports {
		st.Ports = append(st.Ports, Port{Instance: p.Instance, Name: p.Name, MAC: p.Mac, IPs: p.Ips, LinkUp: p.LinkUp,
			RxFrames: p.RxFrames, TxFrames: p.TxFrames, RxBytes: p.RxBytes, TxBytes: p.TxBytes, Drops: p.Drops,
			Reachable: p.Reachable, RTTMillis: p.RttMs, FramesByEtherType: p.FramesByEthertype, Peers: p.Peers,
			RxByEtherType: trafficFromProto(p.RxByEthertype), TxByEtherType: trafficFromProto(p.TxByEthertype),
			LastSeenMillis: p.LastSeenMs, LastReplyMillis: p.LastReplyMs})
	}
	for _, l := range r.Links {
		st.Links = append(st.Links, Link{From: l.From, To: l.To, Frames: l.Frames, Bytes: l.Bytes})
	}
	for _, u := range r.Uplinks {
		st.Uplinks = append(st.Uplinks, Uplink{Name: u.Name, Address: u.Address, Reachable: u.Reachable,
			LastSeenMillis: u.LastSeenMs, RxFrames: u.RxFrames, RxBytes: u.RxBytes, TxFrames: u.TxFrames,
			TxBytes: u.TxBytes, MACs: u.Macs, RTTMillis: u.RttMs})
	}
	return st
}

func trafficToProto(m map[string]Traffic) map[string]*networkv1.Traffic {
	if m == nil {
		return nil
	}
	out := make(map[string]*networkv1.Traffic, len(m))
	for k, v := range m {
		out[k] = &networkv1.Traffic{Frames: v.Frames, Bytes: v.Bytes}
	}
	return out
}

func trafficFromProto(m map[string]*networkv1.Traffic) map[string]Traffic {
	if m == nil {
		return nil
	}
	out := make(map[string]Traffic, len(m))
	for k, v := range m {
		out[k] = Traffic{Frames: v.GetFrames(), Bytes: v.GetBytes()}
	}
	return out
}

// Capture is the server side of the optional capture RPC.
func (s *networkServer) Capture(req *networkv1.CaptureRequest, stream grpc.ServerStreamingServer[networkv1.CapturedFrame]) error {
	c, ok := s.impl.(NetworkCapture)
	if !ok {
		return status.Error(codes.Unimplemented, ErrCaptureUnsupported.Error())
	}
	// Headers now tell the client the capture runs, before any frame does:
	// a quiet LAN may send none for a while.
	if err := stream.SendHeader(metadata.Pairs("loco-capture", "running")); err != nil {
		return err
	}
	err := c.Capture(stream.Context(), CaptureRequest{Instances: req.Instances, Snaplen: req.Snaplen},
		func(f CapturedFrame) error {
			return stream.Send(&networkv1.CapturedFrame{UnixNano: f.Time.UnixNano(), Data: f.Data, Length: f.Length,
				Ingress: f.Ingress, FromHost: f.FromHost, Dropped: f.Dropped})
		})
	return rpcError(err)
}

// FrameStream is a running capture; Recv returns io.EOF when the plugin
// ends it.
type FrameStream struct {
	s grpc.ServerStreamingClient[networkv1.CapturedFrame]
}

// Recv waits for the next frame.
func (f *FrameStream) Recv() (CapturedFrame, error) {
	m, err := f.s.Recv()
	if err != nil {
		return CapturedFrame{}, err
	}
	return CapturedFrame{Time: time.Unix(0, m.UnixNano), Data: m.Data, Length: m.Length,
		Ingress: m.Ingress, FromHost: m.FromHost, Dropped: m.Dropped}, nil
}

// Capture starts a capture on the network plugin and returns once the
// plugin has accepted it; cancel ctx to end it.
func (c *Client) Capture(ctx context.Context, req CaptureRequest) (*FrameStream, error) {
	s, err := c.network.Capture(ctx, &networkv1.CaptureRequest{Instances: req.Instances, Snaplen: req.Snaplen})
	if err != nil {
		return nil, fmt.Errorf("starting a capture on the network plugin: %w", err)
	}
	md, err := s.Header()
	if err == nil && md == nil {
		// The plugin ended the call without headers: its status says why.
		_, err = s.Recv()
		if err == nil {
			err = errors.New("the plugin sent a frame before accepting the capture")
		}
	}
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return nil, fmt.Errorf("%w: %v", ErrCaptureUnsupported, err)
		}
		return nil, fmt.Errorf("starting a capture on the network plugin: %w", fromRPC(err))
	}
	return &FrameStream{s: s}, nil
}
