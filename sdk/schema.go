package sdk

import (
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	pluginv1 "github.com/locolan/loco/sdk/proto/loco/plugin/v1"
)

// Schema describes the body of a plugin's block in the cluster spec.
type Schema struct {
	Attributes []Attribute
	Blocks     []Block
}

// Attribute is one `name = value` in the plugin's block.
type Attribute struct {
	Name        string
	Type        cty.Type
	Required    bool
	Default     cty.Value // cty.NilVal for none
	Description string
}

// Nesting says how often a nested block may appear.
type Nesting int

const (
	// NestingSingle is at most one block, decoded as an object (null when absent).
	NestingSingle Nesting = iota + 1
	// NestingList is any number of blocks, decoded as a list of objects.
	NestingList
	// NestingMap is blocks with one label, decoded as a map keyed by the label.
	NestingMap
)

// Block is a nested block in the plugin's block.
type Block struct {
	Name        string
	Nesting     Nesting
	Body        Schema
	MinItems    int
	MaxItems    int // 0: unlimited
	Description string
}

// Required declares a required attribute.
func Required(name string, ty cty.Type, description string) Attribute {
	return Attribute{Name: name, Type: ty, Required: true, Description: description}
}

// Optional declares an optional attribute with a default (cty.NilVal: null).
func Optional(name string, ty cty.Type, def cty.Value, description string) Attribute {
	return Attribute{Name: name, Type: ty, Default: def, Description: description}
}

// Spec is the hcldec spec for the schema: the core decodes the user's block
// with it, so every error points into the user's file.
func (s Schema) Spec() hcldec.Spec {
	obj := hcldec.ObjectSpec{}
	for _, a := range s.Attributes {
		var spec hcldec.Spec = &hcldec.AttrSpec{Name: a.Name, Type: a.Type, Required: a.Required}
		if a.Default != cty.NilVal {
			spec = &hcldec.DefaultSpec{Primary: spec, Default: &hcldec.LiteralSpec{Value: a.Default}}
		}
		obj[a.Name] = spec
	}
	for _, b := range s.Blocks {
		nested := b.Body.Spec()
		switch b.Nesting {
		case NestingList:
			obj[b.Name] = &hcldec.BlockListSpec{TypeName: b.Name, Nested: nested, MinItems: b.MinItems, MaxItems: b.MaxItems}
		case NestingMap:
			obj[b.Name] = &hcldec.BlockMapSpec{TypeName: b.Name, LabelNames: []string{"name"}, Nested: nested}
		default:
			obj[b.Name] = &hcldec.BlockSpec{TypeName: b.Name, Nested: nested, Required: b.MinItems > 0}
		}
	}
	return obj
}

// ImpliedType is the cty type of a decoded block: the type the configuration
// travels in over msgpack.
func (s Schema) ImpliedType() cty.Type {
	return hcldec.ImpliedType(s.Spec())
}

// Proto converts the schema for the wire.
func (s Schema) Proto() (*pluginv1.Schema, error) {
	out := &pluginv1.Schema{}
	for _, a := range s.Attributes {
		tj, err := ctyjson.MarshalType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("encoding type of attribute %q: %w", a.Name, err)
		}
		pa := &pluginv1.Attribute{Name: a.Name, TypeJson: tj, Required: a.Required, Description: a.Description}
		if a.Default != cty.NilVal {
			// A default written as cty.NumberIntVal for a string attribute is
			// the author's slip; convert where cty can, refuse where it can't.
			def, err := convert.Convert(a.Default, a.Type)
			if err != nil {
				return nil, fmt.Errorf("default of attribute %q does not fit its type: %w", a.Name, err)
			}
			a.Default = def
			b, err := ctymsgpack.Marshal(a.Default, a.Type)
			if err != nil {
				return nil, fmt.Errorf("encoding default of attribute %q: %w", a.Name, err)
			}
			pa.DefaultMsgpack, pa.HasDefault = b, true
		}
		out.Attributes = append(out.Attributes, pa)
	}
	for _, b := range s.Blocks {
		body, err := b.Body.Proto()
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, &pluginv1.NestedBlock{
			TypeName: b.Name, Nesting: pluginv1.NestedBlock_Nesting(b.Nesting), Body: body,
			MinItems: uint32(b.MinItems), MaxItems: uint32(b.MaxItems), Description: b.Description,
		})
	}
	return out, nil
}

// SchemaFromProto is the inverse of Schema.Proto; the host uses it.
func SchemaFromProto(p *pluginv1.Schema) (Schema, error) {
	var s Schema
	if p == nil {
		return s, nil
	}
	for _, a := range p.Attributes {
		ty, err := ctyjson.UnmarshalType(a.TypeJson)
		if err != nil {
			return s, fmt.Errorf("attribute %q has an unreadable type %s: %w", a.Name, a.TypeJson, err)
		}
		attr := Attribute{Name: a.Name, Type: ty, Required: a.Required, Description: a.Description}
		if a.HasDefault {
			v, err := ctymsgpack.Unmarshal(a.DefaultMsgpack, ty)
			if err != nil {
				return s, fmt.Errorf("attribute %q has an unreadable default: %w", a.Name, err)
			}
			attr.Default = v
		}
		s.Attributes = append(s.Attributes, attr)
	}
	for _, b := range p.Blocks {
		body, err := SchemaFromProto(b.Body)
		if err != nil {
			return s, fmt.Errorf("block %q: %w", b.TypeName, err)
		}
		nesting := Nesting(b.Nesting)
		if nesting < NestingSingle || nesting > NestingMap {
			return s, fmt.Errorf("block %q has unknown nesting %d", b.TypeName, b.Nesting)
		}
		s.Blocks = append(s.Blocks, Block{Name: b.TypeName, Nesting: nesting, Body: body,
			MinItems: int(b.MinItems), MaxItems: int(b.MaxItems), Description: b.Description})
	}
	return s, nil
}
