package spec

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/locolan/loco/core/bench/threshold"
	"github.com/locolan/loco/core/qemu"
)

// Defaults for what a spec leaves out.
const (
	DefaultInstances   = 1
	DefaultMachine     = "pc"
	DefaultCPUs        = 1
	DefaultMemoryMiB   = 128
	DefaultNIC         = "e1000"
	DefaultVGA         = "std"
	DefaultAudio       = "none"
	DefaultPointer     = "ps2"
	DefaultAccel       = "auto"
	DefaultDiskIface   = "ide"
	DefaultAPIListen   = "127.0.0.1:7780"
	DefaultStopGrace   = 30 * time.Second
	MaxInstances       = 4096
	minimumMemoryFloor = 16
)

// Allowed values, shared with the QEMU command-line builder's checks.
var (
	// The hardware lists are the QEMU builder's, so a spec that validates
	// also plans.
	NICModels      = qemu.NICModels
	VGAModels      = qemu.VGAModels
	AudioDevices   = qemu.AudioModels
	PointerModels  = qemu.PointerModels
	DiskInterfaces = qemu.DiskInterfaces
	Accelerators   = []string{"auto", qemu.AccelKVM, qemu.AccelTCG}
	Runtimes       = []string{"process", "containerd", "kubernetes"}
	namespaceRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,75}$`)
	pluginKinds    = []string{"network", "stream", "input"}
)

// Loader reads spec files. Files keeps every file it parsed, so diagnostics
// can be printed with their source lines.
type Loader struct {
	parser *hclparse.Parser
	// Vars are -var name=value pairs from the command line.
	Vars map[string]string
	// Environ is searched for LOCO_VAR_<name>; nil means os.Environ().
	Environ []string
}

// NewLoader makes a Loader.
func NewLoader() *Loader { return &Loader{parser: hclparse.NewParser()} }

// Files are the parsed files by name, for printing diagnostics.
func (l *Loader) Files() map[string]*hcl.File { return l.parser.Files() }

// Load reads and validates the spec at path. The cluster is nil when the
// diagnostics hold an error.
func (l *Loader) Load(path string) (*Cluster, hcl.Diagnostics) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot resolve the spec's path", Detail: err.Error()}}
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the spec", Detail: err.Error()}}
	}
	// Parse under the name the user gave, so messages show their path.
	file, diags := l.parser.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	top, moreDiags := file.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "cluster", LabelNames: []string{"name"}},
	}})
	diags = append(diags, moreDiags...)
	if diags.HasErrors() {
		return nil, diags
	}

	vars, varDiags := l.variables(top.Blocks.OfType("variable"))
	diags = append(diags, varDiags...)
	clusters := top.Blocks.OfType("cluster")
	switch {
	case len(clusters) == 0:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No cluster block",
			Detail: `A spec needs one cluster "NAME" { ... } block.`, Subject: file.Body.MissingItemRange().Ptr()})
	case len(clusters) > 1:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "More than one cluster block",
			Detail: "A spec describes one cluster; put other clusters in their own files.", Subject: clusters[1].DefRange.Ptr()})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	diags = append(diags, undefinedVariables(clusters[0].Body, vars)...)
	if diags.HasErrors() {
		return nil, diags
	}
	c, clusterDiags := decodeCluster(clusters[0], ctx, filepath.Dir(abs))
	diags = append(diags, clusterDiags...)
	if diags.HasErrors() {
		return nil, diags
	}
	c.File = abs
	return c, diags
}

type variableBlock struct {
	Type        hcl.Expression `hcl:"type,optional"`
	Default     *cty.Value     `hcl:"default,optional"`
	Description string         `hcl:"description,optional"`
}

// variables resolves each declared variable: -var beats LOCO_VAR_<name>,
// which beats the default, as Terraform users expect.
func (l *Loader) variables(blocks hcl.Blocks) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	env := map[string]string{}
	environ := l.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LOCO_VAR_") {
			env[strings.TrimPrefix(k, "LOCO_VAR_")] = v
		}
	}
	vals := map[string]cty.Value{}
	declared := map[string]bool{}
	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
				Detail: fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes.", name), Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		if declared[name] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is declared twice.", name), Subject: b.DefRange.Ptr()})
			continue
		}
		declared[name] = true
		var vb variableBlock
		if d := gohcl.DecodeBody(b.Body, nil, &vb); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		ty := cty.DynamicPseudoType
		if vb.Type != nil && !isNullExpr(vb.Type) {
			t, d := typeexpr.TypeConstraint(vb.Type)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			ty = t
		}
		var val cty.Value
		var subject *hcl.Range
		source := ""
		if raw, ok := l.Vars[name]; ok {
			val, source = parseRawVar(raw, ty), "-var "+name
		} else if raw, ok := env[name]; ok {
			val, source = parseRawVar(raw, ty), "LOCO_VAR_"+name
		} else if vb.Default != nil {
			val, source = *vb.Default, "its default"
			subject = b.DefRange.Ptr()
		} else {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Variable not set",
				Detail: fmt.Sprintf("Variable %q has no default: set it with -var %s=VALUE or LOCO_VAR_%s.", name, name, name), Subject: b.DefRange.Ptr()})
			continue
		}
		if subject == nil {
			subject = b.DefRange.Ptr()
		}
		conv, err := convert.Convert(val, ty)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wrong type for variable",
				Detail: fmt.Sprintf("Variable %q from %s: %s.", name, source, err), Subject: subject})
			continue
		}
		vals[name] = conv
	}
	for name := range l.Vars {
		if !declared[name] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
				Detail: fmt.Sprintf("-var %s was given, but the spec declares no variable %q.", name, name)})
		}
	}
	return vals, diags
}

// parseRawVar reads a command-line or environment value: strings stay as
// written, other types are parsed as HCL (`-var 'sizes=[1,2]'`).
func parseRawVar(raw string, ty cty.Type) cty.Value {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.StringVal(raw)
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.StringVal(raw)
	}
	return v
}

func isNullExpr(e hcl.Expression) bool {
	v, d := e.Value(nil)
	return !d.HasErrors() && v.IsNull()
}

// undefinedVariables reports each var.X whose X is not declared, at the
// reference, before decoding would give a vaguer "Unsupported attribute".
func undefinedVariables(body hcl.Body, vars map[string]cty.Value) hcl.Diagnostics {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	declared := "No variables are declared."
	if len(names) > 0 {
		declared = "Declared: " + strings.Join(names, ", ") + "."
	}
	var diags hcl.Diagnostics
	hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		st, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok || st.Traversal.RootName() != "var" {
			return nil
		}
		if len(st.Traversal) < 2 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incomplete variable reference",
				Detail: "Write var.NAME.", Subject: st.SrcRange.Ptr()})
			return nil
		}
		attr, ok := st.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			return nil
		}
		if _, ok := vars[attr.Name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undefined variable",
				Detail:  fmt.Sprintf("There is no variable named %q. %s Declare it with a variable %q { } block.", attr.Name, declared, attr.Name),
				Subject: st.SrcRange.Ptr()})
		}
		return nil
	})
	return diags
}

type clusterBlock struct {
	Instances *int            `hcl:"instances,optional"`
	StateDir  *string         `hcl:"state_dir,optional"`
	Image     *imageBlock     `hcl:"image,block"`
	Guest     *guestBlock     `hcl:"guest,block"`
	Instance  []instanceBlock `hcl:"instance,block"`
	Runtime   *runtimeBlock   `hcl:"runtime,block"`
	Network   []pluginBlock   `hcl:"network,block"`
	Stream    []pluginBlock   `hcl:"stream,block"`
	Input     []pluginBlock   `hcl:"input,block"`
	Plugin    []pinBlock      `hcl:"plugin,block"`
	API       *apiBlock       `hcl:"api,block"`
	Bench     *benchBlock     `hcl:"bench,block"`
}

type imageBlock struct {
	Kernel    *string  `hcl:"kernel,optional"`
	Initrd    *string  `hcl:"initrd,optional"`
	Append    *string  `hcl:"append,optional"`
	Disk      *string  `hcl:"disk,optional"`
	MinMemory *int     `hcl:"min_memory,optional"`
	Body      hcl.Body `hcl:",body"`
}

type guestBlock struct {
	Machine       *string  `hcl:"machine,optional"`
	CPUs          *int     `hcl:"cpus,optional"`
	Memory        *int     `hcl:"memory,optional"`
	NIC           *string  `hcl:"nic,optional"`
	VGA           *string  `hcl:"vga,optional"`
	Audio         *string  `hcl:"audio,optional"`
	Accel         *string  `hcl:"accel,optional"`
	DiskInterface *string  `hcl:"disk_interface,optional"`
	Pointer       *string  `hcl:"pointer,optional"`
	StartFrom     *string  `hcl:"start_from,optional"`
	Body          hcl.Body `hcl:",body"`
}

type instanceBlock struct {
	Index string     `hcl:"index,label"`
	Guest guestBlock `hcl:",remain"`
}

type runtimeBlock struct {
	Driver       string  `hcl:"driver,label"`
	StopGrace    *string `hcl:"stop_grace,optional"`
	RestartLimit *int    `hcl:"restart_limit,optional"`
	Address      *string `hcl:"address,optional"`
	Namespace    *string `hcl:"namespace,optional"`
	Snapshotter  *string `hcl:"snapshotter,optional"`
	// runtime "kubernetes"'s (namespace too).
	Kubeconfig   *string  `hcl:"kubeconfig,optional"`
	Context      *string  `hcl:"context,optional"`
	Image        *string  `hcl:"image,optional"`
	BaseVolume   *string  `hcl:"base_volume,optional"`
	StorageClass *string  `hcl:"storage_class,optional"`
	OverlaySize  *string  `hcl:"overlay_size,optional"`
	KVM          *string  `hcl:"kvm,optional"`
	Body         hcl.Body `hcl:",body"`
}

type pluginBlock struct {
	Name     string    `hcl:"name,label"`
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
}

type pinBlock struct {
	Name     string    `hcl:"name,label"`
	Path     *string   `hcl:"path,optional"`
	SHA256   *string   `hcl:"sha256,optional"`
	DefRange hcl.Range `hcl:",def_range"`
	Body     hcl.Body  `hcl:",body"`
}

type apiBlock struct {
	Listen *string  `hcl:"listen,optional"`
	Token  *string  `hcl:"token,optional"`
	Body   hcl.Body `hcl:",body"`
}

// benchBlock holds what `loco bench` gates on; loco run ignores it.
type benchBlock struct {
	Thresholds []string `hcl:"thresholds,optional"`
	Body       hcl.Body `hcl:",body"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func decodeCluster(block *hcl.Block, ctx *hcl.EvalContext, dir string) (*Cluster, hcl.Diagnostics) {
	var cb clusterBlock
	diags := gohcl.DecodeBody(block.Body, ctx, &cb)
	if diags.HasErrors() {
		return nil, diags
	}
	c := &Cluster{Name: block.Labels[0], Instances: DefaultInstances, Overrides: map[int]Guest{}, Pins: map[string]Pin{}, evalCtx: ctx,
		Where: map[string]hcl.Range{"": block.DefRange}}
	errAt := func(body hcl.Body, attr, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: attrRange(body, attr, block.DefRange)})
	}
	// commaFree: the path goes into a QEMU option (file=..., path=...).
	commaFree := func(body hcl.Body, attr, p string) {
		if err := qemu.CheckOptionPath(p); err != nil {
			errAt(body, attr, "Path QEMU cannot take", fmt.Sprintf("%s: %v; rename or move it.", attr, err))
		}
	}
	if !validName(c.Name) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid cluster name",
			Detail: fmt.Sprintf("%q: use 1-40 lower-case letters, digits and dashes, starting with a letter (it names files, sockets and guests).", c.Name), Subject: block.LabelRanges[0].Ptr()})
	}
	if cb.Instances != nil {
		c.Instances = *cb.Instances
		if c.Instances < 1 || c.Instances > MaxInstances {
			errAt(block.Body, "instances", "Invalid instance count", fmt.Sprintf("instances = %d: it must be between 1 and %d.", c.Instances, MaxInstances))
		}
	}
	if cb.StateDir != nil {
		c.StateDir = resolve(dir, *cb.StateDir)
		c.Where["state_dir"] = *attrRange(block.Body, "state_dir", block.DefRange)
		commaFree(block.Body, "state_dir", c.StateDir)
	}

	// Image.
	if cb.Image == nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing image block",
			Detail: "Say what the guests boot: image { disk = \"win98.qcow2\" } or image { kernel = ..., initrd = ... }.", Subject: block.DefRange.Ptr()})
	} else {
		im := cb.Image
		get := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		c.Image = Image{Kernel: get(im.Kernel), Initrd: get(im.Initrd), Append: get(im.Append), Disk: get(im.Disk), MinMemoryMiB: minimumMemoryFloor}
		if im.MinMemory != nil {
			c.Image.MinMemoryMiB = *im.MinMemory
		}
		for _, f := range []struct {
			attr string
			path *string
		}{{"kernel", &c.Image.Kernel}, {"initrd", &c.Image.Initrd}, {"disk", &c.Image.Disk}} {
			if *f.path == "" {
				continue
			}
			*f.path = resolve(dir, *f.path)
			commaFree(im.Body, f.attr, *f.path)
			if st, err := os.Stat(*f.path); err != nil {
				errAt(im.Body, f.attr, "Image file not found", fmt.Sprintf("%s = %q: %v.%s", f.attr, *f.path, err, imageHint(*f.path)))
			} else if st.IsDir() {
				errAt(im.Body, f.attr, "Image file is a directory", fmt.Sprintf("%s = %q must name a file.", f.attr, *f.path))
			}
		}
		if c.Image.Kernel == "" && c.Image.Disk == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Image has nothing to boot",
				Detail: "Give a base disk (disk = ...) or a kernel (kernel = ..., initrd = ...).", Subject: attrRange(im.Body, "", block.DefRange)})
		}
		if c.Image.Kernel == "" && (c.Image.Initrd != "" || c.Image.Append != "") {
			errAt(im.Body, "initrd", "initrd and append need a kernel", "Add kernel = \"...\" or remove initrd and append.")
		}
	}

	// Guest hardware, then per-instance overrides.
	c.Guest = Guest{Machine: DefaultMachine, CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, NIC: DefaultNIC,
		VGA: DefaultVGA, Audio: DefaultAudio, Accel: DefaultAccel, DiskInterface: DefaultDiskIface, Pointer: DefaultPointer}
	if cb.Guest != nil {
		g, d := decodeGuest(cb.Guest, c.Image.MinMemoryMiB, block.DefRange)
		diags = append(diags, d...)
		c.Guest = c.Guest.merge(g)
		for _, attr := range []string{"machine", "memory"} {
			c.Where["guest."+attr] = *attrRange(cb.Guest.Body, attr, block.DefRange)
		}
	}
	for _, ib := range cb.Instance {
		ib := ib
		idx, err := strconv.Atoi(ib.Index)
		if err != nil || idx < 0 || idx >= c.Instances {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid instance index",
				Detail: fmt.Sprintf("instance %q: the label is an index from 0 to %d.", ib.Index, c.Instances-1), Subject: attrRange(ib.Guest.Body, "", block.DefRange)})
			continue
		}
		if _, dup := c.Overrides[idx]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate instance block",
				Detail: fmt.Sprintf("instance %q appears twice.", ib.Index), Subject: attrRange(ib.Guest.Body, "", block.DefRange)})
			continue
		}
		if ib.Guest.Machine != nil {
			errAt(ib.Guest.Body, "machine", "Machine type is cluster-wide", "Set machine in the guest block; guests of one LAN share a machine type.")
		}
		if ib.Guest.Accel != nil {
			errAt(ib.Guest.Body, "accel", "Accelerator is cluster-wide", "Set accel in the guest block; one probe decides it for every guest.")
		}
		g, d := decodeGuest(&ib.Guest, c.Image.MinMemoryMiB, block.DefRange)
		diags = append(diags, d...)
		c.Overrides[idx] = g
		if ib.Guest.Memory != nil {
			c.Where[fmt.Sprintf("instance.%d.memory", idx)] = *attrRange(ib.Guest.Body, "memory", block.DefRange)
		}
	}

	// Runtime.
	c.Runtime = Runtime{Driver: "process", StopGrace: DefaultStopGrace}
	if rb := cb.Runtime; rb != nil {
		switch rb.Driver {
		case "process":
			for _, a := range []struct {
				attr string
				v    *string
			}{{"address", rb.Address}, {"namespace", rb.Namespace}, {"snapshotter", rb.Snapshotter}} {
				if attr := a.attr; a.v != nil {
					errAt(rb.Body, attr, "Attribute of another runtime", fmt.Sprintf("%s is an attribute of runtime \"containerd\"; the process runtime has none.", attr))
				}
			}
			diags = append(diags, rejectKubeAttrs(rb, "process")...)
		case "containerd":
			c.Runtime.Address, c.Runtime.Namespace, c.Runtime.Snapshotter = DefaultContainerdAddress, DefaultContainerdNamespace, "overlayfs"
			if rb.Address != nil {
				if !filepath.IsAbs(*rb.Address) {
					errAt(rb.Body, "address", "Invalid containerd address", fmt.Sprintf("address = %q: give the absolute path of containerd's socket, such as %q.", *rb.Address, DefaultContainerdAddress))
				}
				c.Runtime.Address = *rb.Address
			}
			if rb.Namespace != nil {
				if !namespaceRE.MatchString(*rb.Namespace) {
					errAt(rb.Body, "namespace", "Invalid containerd namespace", fmt.Sprintf("namespace = %q: letters, digits, '.', '_' and '-', starting with a letter or digit.", *rb.Namespace))
				}
				c.Runtime.Namespace = *rb.Namespace
			}
			if rb.Snapshotter != nil {
				c.Runtime.Snapshotter = *rb.Snapshotter
			}
			diags = append(diags, rejectKubeAttrs(rb, "containerd")...)
		case "kubernetes":
			var ds hcl.Diagnostics
			c.Runtime.Kube, ds = decodeKubeRuntime(rb, dir)
			diags = append(diags, ds...)
			if rb.Namespace != nil {
				c.Runtime.Namespace = c.Runtime.Kube.Namespace
			}
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown runtime",
				Detail: fmt.Sprintf("runtime %q: choose one of %s.", rb.Driver, strings.Join(Runtimes, ", ")), Subject: attrRange(rb.Body, "", block.DefRange)})
		}
		c.Runtime.Driver = rb.Driver
		if rb.StopGrace != nil {
			d, err := time.ParseDuration(*rb.StopGrace)
			if err != nil || d < 0 {
				errAt(rb.Body, "stop_grace", "Invalid duration", fmt.Sprintf("stop_grace = %q: write a duration such as \"30s\" or \"2m\".", *rb.StopGrace))
			}
			c.Runtime.StopGrace = d
		}
		if rb.RestartLimit != nil {
			if *rb.RestartLimit < 0 {
				errAt(rb.Body, "restart_limit", "Invalid restart limit", "restart_limit is 0 (never give up) or more.")
			}
			c.Runtime.RestartLimit = *rb.RestartLimit
		}
	}

	// Plugins: one block per kind at most.
	for _, kb := range []struct {
		kind   string
		blocks []pluginBlock
	}{{"network", cb.Network}, {"stream", cb.Stream}, {"input", cb.Input}} {
		for i, pb := range kb.blocks {
			if i > 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "More than one " + kb.kind + " block",
					Detail: fmt.Sprintf("A cluster uses one %s plugin.", kb.kind), Subject: pb.DefRange.Ptr()})
				continue
			}
			if !validName(pb.Name) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid plugin name",
					Detail: fmt.Sprintf("%s %q: plugin names are lower-case letters, digits and dashes.", kb.kind, pb.Name), Subject: pb.DefRange.Ptr()})
				continue
			}
			if d := unhostableStream(pb); kb.kind == "stream" && d != nil {
				diags = append(diags, d)
				continue
			}
			c.Plugins = append(c.Plugins, PluginUse{Kind: kb.kind, Name: pb.Name, Body: pb.Body, DefRange: pb.DefRange, NameRange: pb.DefRange})
		}
	}
	for _, pin := range cb.Plugin {
		kind, _, ok := strings.Cut(pin.Name, "-")
		if !ok || !contains(pluginKinds, kind) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid plugin pin name",
				Detail: fmt.Sprintf("plugin %q: name it <kind>-<name>, e.g. plugin \"network-socket\" { ... }.", pin.Name), Subject: pin.DefRange.Ptr()})
			continue
		}
		p := Pin{DefRange: pin.DefRange}
		if pin.Path != nil {
			p.Path = resolve(dir, *pin.Path)
		}
		if pin.SHA256 != nil {
			p.SHA256 = strings.ToLower(*pin.SHA256)
			if !sha256Hex.MatchString(p.SHA256) {
				errAt(pin.Body, "sha256", "Invalid sha256", "sha256 is 64 hexadecimal digits, as sha256sum prints it.")
			}
		}
		c.Pins[pin.Name] = p
	}

	// API.
	c.API = API{Listen: DefaultAPIListen}
	if ab := cb.API; ab != nil {
		if ab.Listen != nil {
			c.API.Listen = *ab.Listen
			if _, port, err := net.SplitHostPort(c.API.Listen); err != nil {
				errAt(ab.Body, "listen", "Invalid listen address", fmt.Sprintf("listen = %.80q: write HOST:PORT, e.g. \"127.0.0.1:7780\".", c.API.Listen))
			} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				errAt(ab.Body, "listen", "Invalid port", fmt.Sprintf("listen = %.80q: the port is a number from 0 (any free port) to 65535.", c.API.Listen))
			}
		}
		if ab.Token != nil {
			c.API.Token = *ab.Token
			if len(c.API.Token) < 16 {
				errAt(ab.Body, "token", "Token too short", "Use at least 16 characters, or leave token out and loco generates one.")
			}
		}
	}
	if bb := cb.Bench; bb != nil {
		for _, src := range bb.Thresholds {
			r, err := threshold.Parse(src)
			if err != nil {
				errAt(bb.Body, "thresholds", "Invalid threshold", err.Error())
				continue
			}
			c.Bench.Thresholds = append(c.Bench.Thresholds, r)
		}
	}
	return c, diags
}

func decodeGuest(gb *guestBlock, minMemory int, fallback hcl.Range) (Guest, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var g Guest
	oneOf := func(attr string, p *string, allowed []string, dst *string) {
		if p == nil {
			return
		}
		if !contains(allowed, *p) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown " + attr,
				Detail: fmt.Sprintf("%s = %q: choose one of %s.", attr, *p, strings.Join(allowed, ", ")), Subject: attrRange(gb.Body, attr, fallback)})
		}
		*dst = *p
	}
	oneOf("nic", gb.NIC, NICModels, &g.NIC)
	oneOf("vga", gb.VGA, VGAModels, &g.VGA)
	oneOf("audio", gb.Audio, AudioDevices, &g.Audio)
	oneOf("accel", gb.Accel, Accelerators, &g.Accel)
	oneOf("disk_interface", gb.DiskInterface, DiskInterfaces, &g.DiskInterface)
	oneOf("pointer", gb.Pointer, PointerModels, &g.Pointer)
	if gb.Machine != nil {
		g.Machine = *gb.Machine
		if err := qemu.CheckMachineName(g.Machine); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid machine type",
				Detail: fmt.Sprintf("machine: %v; the accelerator is accel = ..., and `qemu-system-x86_64 -machine help` lists the types.", err), Subject: attrRange(gb.Body, "machine", fallback)})
		}
	}
	if gb.StartFrom != nil {
		g.StartFrom = *gb.StartFrom
		if err := qemu.CheckSnapshotName(g.StartFrom); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid snapshot name",
				Detail: fmt.Sprintf("start_from: %v.", err), Subject: attrRange(gb.Body, "start_from", fallback)})
		}
	}
	if gb.CPUs != nil {
		g.CPUs = *gb.CPUs
		if g.CPUs < 1 || g.CPUs > 64 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid CPU count",
				Detail: fmt.Sprintf("cpus = %d: it must be between 1 and 64.", g.CPUs), Subject: attrRange(gb.Body, "cpus", fallback)})
		}
	}
	if gb.Memory != nil {
		g.MemoryMiB = *gb.Memory
		if g.MemoryMiB < minMemory {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not enough memory for the image",
				Detail: fmt.Sprintf("memory = %d MiB, but the image needs at least %d MiB (image.min_memory).", g.MemoryMiB, minMemory), Subject: attrRange(gb.Body, "memory", fallback)})
		}
	}
	return g, diags
}

// attrRange finds where an attribute (or, with "", the block) was written.
func attrRange(body hcl.Body, attr string, fallback hcl.Range) *hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[attr]; ok {
			return a.SrcRange.Ptr()
		}
		r := sb.SrcRange
		r.End = r.Start
		return &r
	}
	return fallback.Ptr()
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

func resolve(dir, p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

func imageHint(p string) string {
	if strings.Contains(p, "testguest") {
		return " Build the test guest with `make testguest`."
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
