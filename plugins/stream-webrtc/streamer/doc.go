// Package streamer is the stream-webrtc plugin: per guest it captures the
// guest's display only while someone watches, encodes H.264 or VP8 per
// variant (full size for the guest being played, thumbnails for the grid),
// and fans each encoded frame out to every viewer of that variant on shared
// pion tracks. Viewers connect with WHEP, which loco proxies at
// /api/instances/{id}/whep. It is importable so other stream plugins can
// reuse its parts.
package streamer

import "github.com/locolan/loco/sdk"

var logger = sdk.Logger()
