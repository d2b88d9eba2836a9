package sdk

import "context"

// Info names a plugin.
type Info struct {
	Name         string // e.g. "socket": the binary is loco-plugin-<kind>-<name>
	Kind         string // KindNetwork, KindStream or KindInput
	Version      string
	Capabilities []string
}

// Plugin is what every plugin implements, whatever its kind.
type Plugin interface {
	Info() Info
	ConfigSchema() Schema
	// Configure may be called again after a restart of the plugin: it must
	// bring the plugin to the same state, not add to it.
	Configure(ctx context.Context, cfg Config, cluster Cluster) error
}

// Network plugins join guests on one Ethernet segment.
type Network interface {
	Plugin
	// Attach returns the QEMU arguments for the instance's netdev, whose id
	// must be NetdevID ("net0"); the core adds the NIC device with the
	// guest's MAC.
	Attach(ctx context.Context, in Instance) ([]string, error)
	Status(ctx context.Context) (LANStatus, error)
}

// Stream plugins turn a guest's display and sound into a browser stream.
type Stream interface {
	Plugin
	// Attach returns the QEMU display and audio arguments for the instance.
	Attach(ctx context.Context, in Instance) ([]string, error)
	// Offer answers a WHEP offer for one variant of the instance's stream.
	Offer(ctx context.Context, req OfferRequest) (answer, sessionID string, err error)
	Hangup(ctx context.Context, sessionID string) error
	Stats(ctx context.Context) ([]StreamStats, error)
}

// Variants of a guest's stream. A viewer asks for one; a plugin that has
// only one picture serves it for both.
const (
	// VariantFull is the guest's screen at its own size and up to the
	// configured frame rate: for the guest being played.
	VariantFull = "full"
	// VariantThumb is at most 400x300 and 10 frames a second, sent only
	// when the screen changes: for a tile in the grid.
	VariantThumb = "thumb"
)

// Variants lists the variants in the order stats report them.
var Variants = []string{VariantFull, VariantThumb}

// OfferRequest is a viewer's WHEP offer for one variant of a guest's stream.
type OfferRequest struct {
	Instance uint32
	SDP      string
	Variant  string // VariantFull or VariantThumb; empty means VariantFull
}

// StreamStats describes one variant of one guest's stream.
type StreamStats struct {
	Instance   uint32
	Variant    string
	Width      int // of the encoded picture, 0 while no encoder runs
	Height     int
	FramesIn   uint64 // updates captured from the guest's display
	FramesOut  uint64 // encoded frames sent
	Repeats    uint64 // of them, sent again because the screen was still
	FPS        float64
	BitrateBPS float64
	EncodeMs   float64
	Viewers    uint32
	KeyFrames  uint64
}

// Input plugins drive a guest's keyboard and mouse and read its screen.
type Input interface {
	Plugin
	Send(ctx context.Context, instance uint32, events []InputEvent) error
	Screenshot(ctx context.Context, instance uint32) (Screenshot, error)
}

// InputEvent is one keyboard or mouse event; exactly one field is set.
type InputEvent struct {
	Key    *KeyEvent    `json:"key,omitempty"`
	Rel    *RelEvent    `json:"rel,omitempty"`
	Abs    *AbsEvent    `json:"abs,omitempty"`
	Button *ButtonEvent `json:"button,omitempty"`
	Wheel  *WheelEvent  `json:"wheel,omitempty"`
}

// KeyEvent is a key going down or up, named by its QEMU qcode.
type KeyEvent struct {
	QCode string `json:"qcode"`
	Down  bool   `json:"down"`
}

// RelEvent moves the mouse relative to where it is.
type RelEvent struct {
	DX int32 `json:"dx"`
	DY int32 `json:"dy"`
}

// AbsEvent places the pointer; both axes run 0..32767.
type AbsEvent struct {
	X int32 `json:"x"`
	Y int32 `json:"y"`
}

// ButtonEvent presses or releases "left", "middle" or "right".
type ButtonEvent struct {
	Button string `json:"button"`
	Down   bool   `json:"down"`
}

// WheelEvent scrolls; positive is up.
type WheelEvent struct {
	Delta int32 `json:"delta"`
}

// Screenshot is a PNG of the guest's screen.
type Screenshot struct {
	PNG           []byte
	Width, Height int
}
