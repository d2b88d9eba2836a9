package spec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// unhostable names stream backends that cannot exist on a loco host, with
// why: the spec is refused at the block with that reason instead of a
// search for a plugin binary that nobody can write.
var unhostable = map[string]string{
	"parsec": "Parsec hosts only on Windows 8.1 or later (and macOS), and its host must be signed in to a Parsec account online; " +
		"it cannot capture a guest's screen on a Linux host, so there is no stream \"parsec\" plugin. " +
		"The one path that exists: run QEMU full screen on a Windows host where Parsec is installed, outside loco (docs/streaming.md, \"Parsec\"). " +
		"On this host use stream \"webrtc\" (browsers), \"vnc\" (noVNC) or \"sunshine\" (Moonlight clients).",
}

func unhostableStream(pb pluginBlock) *hcl.Diagnostic {
	why, ok := unhostable[pb.Name]
	if !ok {
		return nil
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("stream %q cannot run on a loco host", pb.Name),
		Detail: why, Subject: pb.DefRange.Ptr()}
}
