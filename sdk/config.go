package sdk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	pluginv1 "github.com/locolan/loco/sdk/proto/loco/plugin/v1"
)

// Config is the plugin's block as the user wrote it, decoded against the
// plugin's schema, defaults filled in.
type Config struct {
	Value cty.Value
}

// Decode copies the configuration into a Go struct whose fields carry
// `cty:"name"` tags, one per attribute or nested block.
func (c Config) Decode(target any) error {
	if c.Value.IsNull() {
		return nil
	}
	if err := gocty.FromCtyValue(c.Value, target); err != nil {
		return fmt.Errorf("decoding plugin configuration into %T: %w", target, err)
	}
	return nil
}

// EncodeConfig puts a decoded block on the wire.
func EncodeConfig(v cty.Value, ty cty.Type) ([]byte, error) {
	b, err := ctymsgpack.Marshal(v, ty)
	if err != nil {
		return nil, fmt.Errorf("encoding plugin configuration: %w", err)
	}
	return b, nil
}

// DecodeConfig reads a block off the wire; ty is the schema's implied type.
func DecodeConfig(b []byte, ty cty.Type) (Config, error) {
	if len(b) == 0 {
		return Config{Value: cty.NullVal(ty)}, nil
	}
	v, err := ctymsgpack.Unmarshal(b, ty)
	if err != nil {
		return Config{}, fmt.Errorf("decoding plugin configuration: %w", err)
	}
	return Config{Value: v}, nil
}

// Cluster is what the core tells a plugin about the cluster.
type Cluster struct {
	Name      string
	StateDir  string
	Instances []Instance
}

// Instance is one guest as a plugin sees it.
type Instance struct {
	Index uint32
	Name  string
	MAC   string
	// InputQMPSocket is the QMP socket reserved for the input plugin.
	InputQMPSocket string
	// VNC is "unix:/path" or "127.0.0.1:port".
	VNC      string
	StateDir string
}

// Proto converts the cluster for the wire.
func (c Cluster) Proto() *pluginv1.Cluster {
	out := &pluginv1.Cluster{Name: c.Name, StateDir: c.StateDir}
	for _, in := range c.Instances {
		out.Instances = append(out.Instances, in.Proto())
	}
	return out
}

// Proto converts the instance for the wire.
func (in Instance) Proto() *pluginv1.Instance {
	return &pluginv1.Instance{Index: in.Index, Name: in.Name, Mac: in.MAC,
		InputQmpSocket: in.InputQMPSocket, Vnc: in.VNC, StateDir: in.StateDir}
}

func clusterFromProto(p *pluginv1.Cluster) Cluster {
	c := Cluster{Name: p.GetName(), StateDir: p.GetStateDir()}
	for _, in := range p.GetInstances() {
		c.Instances = append(c.Instances, instanceFromProto(in))
	}
	return c
}

func instanceFromProto(p *pluginv1.Instance) Instance {
	return Instance{Index: p.GetIndex(), Name: p.GetName(), MAC: p.GetMac(),
		InputQMPSocket: p.GetInputQmpSocket(), VNC: p.GetVnc(), StateDir: p.GetStateDir()}
}

// AttrError is a problem with one attribute of the plugin's block. Return it
// (or several joined with errors.Join) from Configure, and the core shows the
// user the attribute's position in their file.
type AttrError struct {
	Path    []string // attribute name, then nested names for blocks
	Summary string
	Detail  string
}

func (e *AttrError) Error() string {
	msg := fmt.Sprintf("%s: %s", strings.Join(e.Path, "."), e.Summary)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// diagnosticsFromError turns what Configure returned into wire diagnostics,
// keeping attribute paths where the plugin gave them.
func diagnosticsFromError(err error) []*pluginv1.Diagnostic {
	if err == nil {
		return nil
	}
	var errs []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*pluginv1.Diagnostic
	for _, e := range errs {
		d := &pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_SEVERITY_ERROR, Summary: e.Error()}
		var ae *AttrError
		if errors.As(e, &ae) {
			d.Summary, d.Detail, d.AttributePath = ae.Summary, ae.Detail, ae.Path
		}
		out = append(out, d)
	}
	return out
}
