// Package mcptools serves loco's Model Context Protocol tools
// (list_instances, screenshot, click, move, type, key) over a running
// cluster's API, for AI computer-use agents (loco mcp).
package mcptools

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/api/client"
	"github.com/locolan/loco/sdk/input"
)

// API is what the tools ask of loco's API; *client.Client is it.
type API interface {
	Instances(ctx context.Context) ([]api.Instance, error)
	Screenshot(ctx context.Context, id string) (client.Screenshot, error)
	Input(ctx context.Context, id string, events ...client.Event) (api.InputResult, error)
	Type(ctx context.Context, id, text string) (api.TypeResult, error)
}

var _ API = (*client.Client)(nil)

type tools struct{ a API }

// mcpInstructions tell the agent how the tools fit together.
const mcpInstructions = `These tools drive emulated PCs (QEMU guests) of a loco cluster.
Call list_instances to see the guests, then screenshot to see one. click and
move take pixel coordinates of the latest screenshot (they need a guest with
an absolute pointer, pointer = "tablet"; without one, move with dx/dy and
click without coordinates). type enters text on a US keyboard; key presses a
key or chord such as "ret" or "ctrl+alt+delete".`

// NewServer makes the MCP server of loco's tools over a.
func NewServer(a API, version string) *mcp.Server {
	c := &tools{a}
	s := mcp.NewServer(&mcp.Implementation{Name: "loco", Title: "loco LAN party guests", Version: version},
		&mcp.ServerOptions{Instructions: mcpInstructions})
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{Name: "list_instances", Annotations: readOnly,
		Description: "List the cluster's guests: index, name, state (running, restarting, ...), accelerator, uptime, IP addresses."},
		c.listInstances)
	mcp.AddTool(s, &mcp.Tool{Name: "screenshot", Annotations: readOnly,
		Description: "Take a PNG screenshot of a guest's screen. Its pixel size is the coordinate space of click and move."},
		c.screenshotTool)
	mcp.AddTool(s, &mcp.Tool{Name: "click",
		Description: "Click a mouse button. With x and y (pixels of the screenshot) the pointer moves there first (needs an absolute pointer); without, it clicks where the pointer is."},
		c.click)
	mcp.AddTool(s, &mcp.Tool{Name: "move",
		Description: "Move the mouse: to x, y (pixels of the screenshot; needs an absolute pointer), or by dx, dy (relative, works on every guest)."},
		c.move)
	mcp.AddTool(s, &mcp.Tool{Name: "type",
		Description: "Type text on the guest's US keyboard: printable ASCII, tab and newline (Enter). Other characters are refused before anything is typed."},
		c.typeTool)
	mcp.AddTool(s, &mcp.Tool{Name: "key",
		Description: `Press a key or chord and release it: "ret", "esc", "f1", "ctrl+alt+delete", "shift+tab", "alt+f4". Names are QEMU qcodes or common aliases (enter, space, del, win, pageup).`},
		c.key)
	return s
}

// mcpInstance names a guest in a tool call: its index, as a number or a
// string (agents write both), or its name; absent means guest 0.
type mcpInstance struct {
	Instance any `json:"instance,omitempty" jsonschema:"the guest: index (0, 1, ...) or name (demo-0); default 0"`
}

func (a mcpInstance) id() string {
	id := ""
	switch v := a.Instance.(type) {
	case nil:
	case float64:
		id = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		id = strings.TrimSpace(fmt.Sprint(v))
	}
	if id == "" {
		return "0"
	}
	return id
}

type listIn struct{}

func (c *tools) listInstances(ctx context.Context, _ *mcp.CallToolRequest, _ listIn) (*mcp.CallToolResult, any, error) {
	out, err := c.a.Instances(ctx)
	if err != nil {
		return nil, nil, err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return text(string(b)), nil, nil
}

func (c *tools) screenshotTool(ctx context.Context, _ *mcp.CallToolRequest, in mcpInstance) (*mcp.CallToolResult, any, error) {
	shot, err := c.a.Screenshot(ctx, in.id())
	if err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.ImageContent{Data: shot.PNG, MIMEType: "image/png"},
		&mcp.TextContent{Text: fmt.Sprintf("guest %s, screen %dx%d pixels", in.id(), shot.Width, shot.Height)},
	}}, nil, nil
}

type clickIn struct {
	mcpInstance
	X      *int   `json:"x,omitempty" jsonschema:"pixel column in the screenshot (with y)"`
	Y      *int   `json:"y,omitempty" jsonschema:"pixel row in the screenshot (with x)"`
	Button string `json:"button,omitempty" jsonschema:"left (default), middle or right"`
	Double bool   `json:"double,omitempty" jsonschema:"double-click"`
}

func (c *tools) click(ctx context.Context, _ *mcp.CallToolRequest, in clickIn) (*mcp.CallToolResult, any, error) {
	button := in.Button
	if button == "" {
		button = "left"
	}
	var events []client.Event
	where := "where the pointer is"
	if in.X != nil || in.Y != nil {
		abs, err := c.pixelToAbs(ctx, in.id(), in.X, in.Y)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, abs)
		where = fmt.Sprintf("at (%d, %d)", *in.X, *in.Y)
	}
	presses := 1
	if in.Double {
		presses = 2
	}
	for range presses {
		events = append(events, client.Button(button, true), client.Button(button, false))
	}
	if _, err := c.a.Input(ctx, in.id(), events...); err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("clicked %s %s on guest %s", button, where, in.id())), nil, nil
}

type moveIn struct {
	mcpInstance
	X  *int `json:"x,omitempty" jsonschema:"pixel column to move to (with y; needs an absolute pointer)"`
	Y  *int `json:"y,omitempty" jsonschema:"pixel row to move to (with x)"`
	DX *int `json:"dx,omitempty" jsonschema:"relative motion right (negative: left), up to 1024"`
	DY *int `json:"dy,omitempty" jsonschema:"relative motion down (negative: up), up to 1024"`
}

func (c *tools) move(ctx context.Context, _ *mcp.CallToolRequest, in moveIn) (*mcp.CallToolResult, any, error) {
	abs, rel := in.X != nil || in.Y != nil, in.DX != nil || in.DY != nil
	var ev client.Event
	var what string
	switch {
	case abs && rel:
		return nil, nil, fmt.Errorf("give x and y, or dx and dy, not both")
	case abs:
		e, err := c.pixelToAbs(ctx, in.id(), in.X, in.Y)
		if err != nil {
			return nil, nil, err
		}
		ev, what = e, fmt.Sprintf("to (%d, %d)", *in.X, *in.Y)
	case rel:
		dx, dy := deref(in.DX), deref(in.DY)
		ev, what = client.Move(dx, dy), fmt.Sprintf("by (%d, %d)", dx, dy)
	default:
		return nil, nil, fmt.Errorf("give x and y (pixels) or dx and dy (relative)")
	}
	if _, err := c.a.Input(ctx, in.id(), ev); err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("moved the pointer %s on guest %s", what, in.id())), nil, nil
}

type typeIn struct {
	mcpInstance
	Text string `json:"text" jsonschema:"the text to type; newline is Enter"`
}

func (c *tools) typeTool(ctx context.Context, _ *mcp.CallToolRequest, in typeIn) (*mcp.CallToolResult, any, error) {
	res, err := c.a.Type(ctx, in.id(), in.Text)
	if err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("typed %d characters on guest %s", res.Characters, res.Instance)), nil, nil
}

type keyIn struct {
	mcpInstance
	Keys string `json:"keys" jsonschema:"a key or a chord joined by +, e.g. ret or ctrl+alt+delete"`
}

func (c *tools) key(ctx context.Context, _ *mcp.CallToolRequest, in keyIn) (*mcp.CallToolResult, any, error) {
	var names []string
	for _, k := range strings.Split(in.Keys, "+") {
		if k = strings.TrimSpace(k); k == "" {
			return nil, nil, fmt.Errorf("keys %q: an empty key name; join keys with + (the + key itself is shift+equal)", in.Keys)
		}
		names = append(names, k)
	}
	// Checked here too, so the agent hears about a misspelt key from the
	// keymap itself, with its suggestion.
	if _, err := input.Chord(names); err != nil {
		return nil, nil, err
	}
	if _, err := c.a.Input(ctx, in.id(), client.Chord(names...)); err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("pressed %s on guest %s", strings.Join(names, "+"), in.id())), nil, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// pixelToAbs turns a pixel of the guest's current screen into QEMU's
// absolute coordinates (0..32767 across the screen). The screen size is
// asked for each time: guests change resolution (Windows 98 boots at
// 720x400 and switches to 800x600).
func (c *tools) pixelToAbs(ctx context.Context, id string, x, y *int) (client.Event, error) {
	if x == nil || y == nil {
		return client.Event{}, fmt.Errorf("give both x and y")
	}
	shot, err := c.a.Screenshot(ctx, id)
	if err != nil {
		return client.Event{}, err
	}
	if *x < 0 || *y < 0 || *x >= shot.Width || *y >= shot.Height {
		return client.Event{}, fmt.Errorf("(%d, %d) is outside guest %s's %dx%d screen", *x, *y, id, shot.Width, shot.Height)
	}
	scale := func(v, size int) int {
		if size <= 1 {
			return 0
		}
		return int(math.Round(float64(v) * input.AbsMax / float64(size-1)))
	}
	return client.MoveTo(scale(*x, shot.Width), scale(*y, shot.Height)), nil
}
