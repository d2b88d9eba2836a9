package spec

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/locolan/loco/core/bench/threshold"
)

// Cluster is a decoded, validated cluster spec.
type Cluster struct {
	Name      string
	File      string // absolute path of the spec file
	Instances int
	StateDir  string // absolute; "" means the default for this cluster
	Image     Image
	Guest     Guest
	// Overrides holds per-instance guest settings, by instance index.
	Overrides map[int]Guest
	Runtime   Runtime
	Plugins   []PluginUse
	Pins      map[string]Pin // by "<kind>-<name>"
	API       API
	// Where records where some attributes were written, for checks that
	// only the host can make (core/cluster's CheckHost): "" is the cluster
	// block, then "state_dir", "guest.machine", "guest.memory",
	// "instance.N.memory".
	Where map[string]hcl.Range
	Bench Bench

	evalCtx *hcl.EvalContext
}

// At is where key was written (see Where), else the cluster block.
func (c *Cluster) At(key string) *hcl.Range {
	if r, ok := c.Where[key]; ok {
		return &r
	}
	r := c.Where[""]
	return &r
}

// EvalContext is the context plugin blocks are decoded in (variables).
func (c *Cluster) EvalContext() *hcl.EvalContext { return c.evalCtx }

// GuestFor is the guest settings of instance i, overrides applied.
func (c *Cluster) GuestFor(i int) Guest {
	g := c.Guest
	if o, ok := c.Overrides[i]; ok {
		g = g.merge(o)
	}
	return g
}

// Plugin returns the cluster's plugin of a kind, if it names one.
func (c *Cluster) Plugin(kind string) (PluginUse, bool) {
	for _, p := range c.Plugins {
		if p.Kind == kind {
			return p, true
		}
	}
	return PluginUse{}, false
}

// Image is what every guest boots from. Paths are absolute.
type Image struct {
	Kernel string
	Initrd string
	Append string
	Disk   string // base disk; each guest gets a copy-on-write overlay
	// MinMemoryMiB is the least memory the image boots with.
	MinMemoryMiB int
}

// Guest is the virtual hardware of a guest. In Overrides, zero fields mean
// "as the cluster's guest block says".
type Guest struct {
	Machine       string
	CPUs          int
	MemoryMiB     int
	NIC           string
	VGA           string
	Audio         string
	Accel         string // "auto", "kvm" or "tcg"
	DiskInterface string // "ide" or "virtio"
	Pointer       string // "ps2" or "tablet" (adds a USB tablet for absolute pointing)
	// StartFrom names the snapshot (loco snapshot save) the guest starts
	// from instead of booting; "" boots. `loco run --from` overrides it.
	StartFrom string
}

func (g Guest) merge(o Guest) Guest {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	g.Machine, g.NIC, g.VGA = pick(g.Machine, o.Machine), pick(g.NIC, o.NIC), pick(g.VGA, o.VGA)
	g.Audio, g.Accel, g.DiskInterface = pick(g.Audio, o.Audio), pick(g.Accel, o.Accel), pick(g.DiskInterface, o.DiskInterface)
	g.Pointer, g.StartFrom = pick(g.Pointer, o.Pointer), pick(g.StartFrom, o.StartFrom)
	if o.CPUs != 0 {
		g.CPUs = o.CPUs
	}
	if o.MemoryMiB != 0 {
		g.MemoryMiB = o.MemoryMiB
	}
	return g
}

// Runtime says how guests run.
type Runtime struct {
	Driver string // "process", "containerd" or "kubernetes"
	// StopGrace is how long a guest gets to power down before it is quit.
	StopGrace time.Duration
	// RestartLimit is how many restarts in a row the supervisor tries
	// before it gives a guest up; 0 means never give up.
	RestartLimit int
	// Address, Namespace and Snapshotter are runtime "containerd"'s: its
	// socket, the containerd namespace the guests' containers live in, and
	// the snapshotter their root filesystems come from.
	Address     string
	Namespace   string
	Snapshotter string
	// Kube is runtime "kubernetes"'s settings; nil for the other runtimes.
	Kube *KubeRuntime
}

// Defaults of runtime "containerd".
const (
	DefaultContainerdAddress   = "/run/containerd/containerd.sock"
	DefaultContainerdNamespace = "loco"
)

// PluginUse is a plugin block (`network "socket" { ... }`): the plugin's own
// body stays undecoded until the plugin host knows its schema.
type PluginUse struct {
	Kind      string
	Name      string
	Body      hcl.Body
	DefRange  hcl.Range // the block header, for errors about the block as a whole
	NameRange hcl.Range // the label, for errors about the plugin's name
}

// Binary is the plugin binary's name, loco-plugin-<kind>-<name>.
func (p PluginUse) Binary() string { return "loco-plugin-" + p.Kind + "-" + p.Name }

// Pin fixes where a plugin binary comes from and what it must hash to.
type Pin struct {
	Path     string // absolute, or "" to search as usual
	SHA256   string // lower-case hex, or ""
	DefRange hcl.Range
}

// Bench is what `loco bench` gates on (the spec's bench block).
type Bench struct {
	// Thresholds fail the run when a report row breaks one.
	Thresholds []threshold.Rule
}

// API is the core's HTTP API.
type API struct {
	Listen string
	// Token is the bearer token; "" means a new one each run, kept in the
	// state directory.
	Token string
}
