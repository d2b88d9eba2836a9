package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/sdk/input"
)

func newMCPCmd(g *globals) *cobra.Command {
	var sf specFlags
	cmd := &cobra.Command{
		Use:   "mcp [FILE|CLUSTER]",
		Short: "Serve a running cluster's guests to AI agents over MCP (stdio)",
		Long: `mcp speaks the Model Context Protocol on stdin and stdout, so an AI
computer-use agent can see and drive the guests of a running cluster. Its
tools: list_instances, screenshot, click, move, type and key. It talks to
the cluster's HTTP API with the token from <state_dir>/api-token, so the
cluster must run (loco run) and have an input plugin (input "qmp" {}).

Pixel coordinates are those of the guest's current screen, as the
screenshot tool shows it. Logs go to stderr; stdout carries the protocol.`,
		Example: `  loco mcp demo
  # in an MCP client's configuration:
  {"command": "loco", "args": ["mcp", "demo"]}`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stateDirArg(cmd, &sf, args)
			if err != nil {
				return err
			}
			base, token, err := cluster.APIEndpoint(dir)
			if err != nil {
				return err
			}
			c := &apiClient{base: base, token: token, http: &http.Client{Timeout: 2 * time.Minute}}
			g.log.Info("serving MCP on stdio", "cluster", filepath.Base(dir), "api", base)
			return newMCPServer(c).Run(cmd.Context(), &mcp.StdioTransport{})
		},
	}
	sf.register(cmd)
	return cmd
}

// mcpInstructions tell the agent how the tools fit together.
const mcpInstructions = `These tools drive emulated PCs (QEMU guests) of a loco cluster.
Call list_instances to see the guests, then screenshot to see one. click and
move take pixel coordinates of the latest screenshot (they need a guest with
an absolute pointer, pointer = "tablet"; without one, move with dx/dy and
click without coordinates). type enters text on a US keyboard; key presses a
key or chord such as "ret" or "ctrl+alt+delete".`

func newMCPServer(c *apiClient) *mcp.Server {
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

func (c *apiClient) listInstances(ctx context.Context, _ *mcp.CallToolRequest, _ listIn) (*mcp.CallToolResult, any, error) {
	var out []api.Instance
	if err := c.call(ctx, "GET", "/api/instances", nil, &out); err != nil {
		return nil, nil, err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return text(string(b)), nil, nil
}

func (c *apiClient) screenshotTool(ctx context.Context, _ *mcp.CallToolRequest, in mcpInstance) (*mcp.CallToolResult, any, error) {
	shot, err := c.screenshot(ctx, in.id())
	if err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.ImageContent{Data: shot.png, MIMEType: "image/png"},
		&mcp.TextContent{Text: fmt.Sprintf("guest %s, screen %dx%d pixels", in.id(), shot.width, shot.height)},
	}}, nil, nil
}

type clickIn struct {
	mcpInstance
	X      *int   `json:"x,omitempty" jsonschema:"pixel column in the screenshot (with y)"`
	Y      *int   `json:"y,omitempty" jsonschema:"pixel row in the screenshot (with x)"`
	Button string `json:"button,omitempty" jsonschema:"left (default), middle or right"`
	Double bool   `json:"double,omitempty" jsonschema:"double-click"`
}

func (c *apiClient) click(ctx context.Context, _ *mcp.CallToolRequest, in clickIn) (*mcp.CallToolResult, any, error) {
	button := in.Button
	if button == "" {
		button = "left"
	}
	var events []any
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
		events = append(events, map[string]any{"button": map[string]any{"button": button, "down": true}},
			map[string]any{"button": map[string]any{"button": button, "down": false}})
	}
	if err := c.call(ctx, "POST", "/api/instances/"+url.PathEscape(in.id())+"/input", map[string]any{"events": events}, nil); err != nil {
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

func (c *apiClient) move(ctx context.Context, _ *mcp.CallToolRequest, in moveIn) (*mcp.CallToolResult, any, error) {
	abs, rel := in.X != nil || in.Y != nil, in.DX != nil || in.DY != nil
	var ev any
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
		ev, what = map[string]any{"rel": map[string]int{"dx": dx, "dy": dy}}, fmt.Sprintf("by (%d, %d)", dx, dy)
	default:
		return nil, nil, fmt.Errorf("give x and y (pixels) or dx and dy (relative)")
	}
	if err := c.call(ctx, "POST", "/api/instances/"+url.PathEscape(in.id())+"/input", map[string]any{"events": []any{ev}}, nil); err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("moved the pointer %s on guest %s", what, in.id())), nil, nil
}

type typeIn struct {
	mcpInstance
	Text string `json:"text" jsonschema:"the text to type; newline is Enter"`
}

func (c *apiClient) typeTool(ctx context.Context, _ *mcp.CallToolRequest, in typeIn) (*mcp.CallToolResult, any, error) {
	var res api.TypeResult
	if err := c.call(ctx, "POST", "/api/instances/"+url.PathEscape(in.id())+"/type", map[string]string{"text": in.Text}, &res); err != nil {
		return nil, nil, err
	}
	return text(fmt.Sprintf("typed %d characters on guest %s", res.Characters, res.Instance)), nil, nil
}

type keyIn struct {
	mcpInstance
	Keys string `json:"keys" jsonschema:"a key or a chord joined by +, e.g. ret or ctrl+alt+delete"`
}

func (c *apiClient) key(ctx context.Context, _ *mcp.CallToolRequest, in keyIn) (*mcp.CallToolResult, any, error) {
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
	if err := c.call(ctx, "POST", "/api/instances/"+url.PathEscape(in.id())+"/input",
		map[string]any{"events": []any{map[string]any{"chord": names}}}, nil); err != nil {
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
func (c *apiClient) pixelToAbs(ctx context.Context, id string, x, y *int) (any, error) {
	if x == nil || y == nil {
		return nil, fmt.Errorf("give both x and y")
	}
	shot, err := c.screenshot(ctx, id)
	if err != nil {
		return nil, err
	}
	if *x < 0 || *y < 0 || *x >= shot.width || *y >= shot.height {
		return nil, fmt.Errorf("(%d, %d) is outside guest %s's %dx%d screen", *x, *y, id, shot.width, shot.height)
	}
	scale := func(v, size int) int {
		if size <= 1 {
			return 0
		}
		return int(math.Round(float64(v) * input.AbsMax / float64(size-1)))
	}
	return map[string]any{"abs": map[string]int{"x": scale(*x, shot.width), "y": scale(*y, shot.height)}}, nil
}

// apiClient talks to a running loco's HTTP API.
type apiClient struct {
	base, token string
	http        *http.Client
}

// apiError is the API's answer to a request it refused.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// request makes one API request. A GET that meets 503 (the input plugin
// restarts in well under a second) is tried again for a while; input is
// not, because a batch cut short by a dying plugin may have been partly
// delivered.
func (c *apiClient) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.requestOnce(ctx, method, path, body)
		var ae *apiError
		if method != "GET" || !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *apiClient) requestOnce(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the loco API at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	return resp, nil
}

// call makes a JSON request and decodes the answer into out (nil: ignore).
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

type screenshot struct {
	png           []byte
	width, height int
}

func (c *apiClient) screenshot(ctx context.Context, id string) (screenshot, error) {
	resp, err := c.request(ctx, "GET", "/api/instances/"+url.PathEscape(id)+"/screenshot", nil)
	if err != nil {
		return screenshot{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return screenshot{}, fmt.Errorf("reading guest %s's screenshot: %w", id, err)
	}
	w, _ := strconv.Atoi(resp.Header.Get("X-Loco-Width"))
	h, _ := strconv.Atoi(resp.Header.Get("X-Loco-Height"))
	if w <= 0 || h <= 0 {
		return screenshot{}, fmt.Errorf("guest %s's screenshot came without its size", id)
	}
	return screenshot{png: b, width: w, height: h}, nil
}
