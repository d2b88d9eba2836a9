package sdk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/locolan/loco/sdk"
	"github.com/locolan/loco/sdk/sdktest"
)

// kitchen is an input plugin whose schema uses every schema feature.
type kitchen struct {
	got    config
	events []sdk.InputEvent
}

type inner struct {
	On bool `cty:"on"`
}

type config struct {
	Name  string   `cty:"name"`
	Size  int      `cty:"size"`
	Tags  []string `cty:"tags"`
	Inner *inner   `cty:"inner"`
	Rooms map[string]struct {
		Seats int `cty:"seats"`
	} `cty:"room"`
}

func (k *kitchen) Info() sdk.Info {
	return sdk.Info{Name: "kitchen", Kind: sdk.KindInput, Version: "1"}
}

func (k *kitchen) ConfigSchema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			sdk.Required("name", cty.String, ""),
			sdk.Optional("size", cty.Number, cty.NumberIntVal(3), ""),
			sdk.Optional("tags", cty.List(cty.String), cty.ListValEmpty(cty.String), ""),
		},
		Blocks: []sdk.Block{
			{Name: "inner", Nesting: sdk.NestingSingle, Body: sdk.Schema{Attributes: []sdk.Attribute{sdk.Optional("on", cty.Bool, cty.False, "")}}},
			{Name: "room", Nesting: sdk.NestingMap, Body: sdk.Schema{Attributes: []sdk.Attribute{sdk.Required("seats", cty.Number, "")}}},
		},
	}
}

func (k *kitchen) Configure(_ context.Context, cfg sdk.Config, _ sdk.Cluster) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.Size > 10 {
		return errors.Join(
			&sdk.AttrError{Path: []string{"size"}, Summary: "Too big"},
			&sdk.AttrError{Path: []string{"room", "seats"}, Summary: "Check seats"})
	}
	k.got = c
	return nil
}

func (k *kitchen) Send(_ context.Context, _ uint32, ev []sdk.InputEvent) error {
	k.events = append(k.events, ev...)
	return nil
}

func (k *kitchen) Screenshot(context.Context, uint32) (sdk.Screenshot, error) {
	return sdk.Screenshot{PNG: []byte{1, 2}, Width: 640, Height: 480}, nil
}

func TestConfigureRoundTrip(t *testing.T) {
	k := &kitchen{}
	c := sdktest.Start(t, k)
	problems, diags := sdktest.Configure(t, c, `
name = "x"
tags = ["a", "b"]
inner {
  on = true
}
room "lobby" {
  seats = 4
}
`, sdk.Cluster{Name: "t"})
	if diags.HasErrors() || len(problems) > 0 {
		t.Fatalf("diags %v problems %v", diags, problems)
	}
	if k.got.Name != "x" || k.got.Size != 3 || len(k.got.Tags) != 2 || k.got.Inner == nil || !k.got.Inner.On || k.got.Rooms["lobby"].Seats != 4 {
		t.Errorf("decoded %+v", k.got)
	}
}

func TestConfigureErrors(t *testing.T) {
	c := sdktest.Start(t, &kitchen{})
	if _, diags := sdktest.Configure(t, c, `size = 1`, sdk.Cluster{}); !diags.HasErrors() {
		t.Error("missing required attribute accepted")
	}
	if _, diags := sdktest.Configure(t, c, "name = \"x\"\nbogus = 1", sdk.Cluster{}); !diags.HasErrors() {
		t.Error("unknown attribute accepted")
	}
	problems, diags := sdktest.Configure(t, c, "name = \"x\"\nsize = 11", sdk.Cluster{})
	if diags.HasErrors() || len(problems) != 2 || problems[0].Path[0] != "size" || problems[1].Path[1] != "seats" {
		t.Errorf("want two problems with paths, got %+v %v", problems, diags)
	}
}

func TestSchemaSurvivesTheWire(t *testing.T) {
	s := (&kitchen{}).ConfigSchema()
	p, err := s.Proto()
	if err != nil {
		t.Fatal(err)
	}
	back, err := sdk.SchemaFromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	if !back.ImpliedType().Equals(s.ImpliedType()) {
		t.Errorf("implied type changed: %#v vs %#v", back.ImpliedType(), s.ImpliedType())
	}
	if !back.Attributes[1].Default.RawEquals(cty.NumberIntVal(3)) {
		t.Errorf("default lost: %#v", back.Attributes[1].Default)
	}
	bad := sdk.Schema{Attributes: []sdk.Attribute{sdk.Optional("n", cty.Number, cty.StringVal("many"), "")}}
	if _, err := bad.Proto(); err == nil {
		t.Error("a default that does not fit its type was accepted")
	}
}

func TestInputRPCs(t *testing.T) {
	k := &kitchen{}
	c := sdktest.Start(t, k)
	ctx := context.Background()
	events := []sdk.InputEvent{
		{Key: &sdk.KeyEvent{QCode: "a", Down: true}}, {Rel: &sdk.RelEvent{DX: 3, DY: -4}},
		{Abs: &sdk.AbsEvent{X: 100, Y: 200}}, {Button: &sdk.ButtonEvent{Button: "left", Down: true}},
		{Wheel: &sdk.WheelEvent{Delta: -1}},
	}
	if err := c.Send(ctx, 2, events); err != nil {
		t.Fatal(err)
	}
	if len(k.events) != 5 || k.events[0].Key.QCode != "a" || k.events[1].Rel.DY != -4 || k.events[4].Wheel.Delta != -1 {
		t.Errorf("events arrived as %+v", k.events)
	}
	if err := c.Send(ctx, 0, []sdk.InputEvent{{}}); err == nil {
		t.Error("an empty event was sent")
	}
	shot, err := c.Screenshot(ctx, 0)
	if err != nil || shot.Width != 640 || len(shot.PNG) != 2 {
		t.Errorf("screenshot %+v %v", shot, err)
	}
	info, err := c.Info(ctx)
	if err != nil || info.Kind != sdk.KindInput {
		t.Errorf("info %+v %v", info, err)
	}
}
