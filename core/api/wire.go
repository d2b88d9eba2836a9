package api

// Header and trailer names of the API, shared with its Go client
// (core/api/client).
const (
	// HeaderWidth and HeaderHeight carry a screenshot's size in pixels.
	HeaderWidth  = "X-Loco-Width"
	HeaderHeight = "X-Loco-Height"
	// TrailerFrames and TrailerDropped end a LAN capture: how many frames
	// it holds, and how many were lost because the client read too slowly.
	TrailerFrames  = "X-Loco-Frames"
	TrailerDropped = "X-Loco-Dropped"
)
