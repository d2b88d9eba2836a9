package mcptools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/api/client"
)

// standInAPI stands in for loco's API at the API seam (the real client and
// server are tested against each other in core/api/client, and the tools
// end to end in cmd/loco's TestMCP): one 640x480 guest that records what
// it is sent.
type standInAPI struct {
	input [][]client.Event
	typed []string
	shots int
}

func (a *standInAPI) Instances(context.Context) ([]api.Instance, error) {
	return []api.Instance{{Index: 0, Name: "m-0", State: "restarting"}}, nil
}

func (a *standInAPI) Screenshot(_ context.Context, id string) (client.Screenshot, error) {
	if id != "0" && id != "m-0" {
		return client.Screenshot{}, &client.Error{Status: 404, Message: fmt.Sprintf("no instance %q", id)}
	}
	a.shots++
	return client.Screenshot{PNG: []byte("\x89PNG"), Width: 640, Height: 480}, nil
}

func (a *standInAPI) Input(_ context.Context, _ string, events ...client.Event) (api.InputResult, error) {
	a.input = append(a.input, events)
	return api.InputResult{Events: len(events)}, nil
}

func (a *standInAPI) Type(_ context.Context, id, text string) (api.TypeResult, error) {
	a.typed = append(a.typed, text)
	return api.TypeResult{Instance: id, Characters: len(text)}, nil
}

func session(t testing.TB, a API) *mcp.ClientSession {
	ctx := context.Background()
	ct, st := mcp.NewInMemoryTransports()
	if _, err := NewServer(a, "test").Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	return strings.Join(texts, "\n"), res.IsError
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestTools: each tool turns its arguments into the API calls it should,
// and refuses what it cannot do with a message the agent can act on.
func TestTools(t *testing.T) {
	a := &standInAPI{}
	cs := session(t, a)

	if out, isErr := call(t, cs, "list_instances", nil); isErr || !strings.Contains(out, `"state": "restarting"`) {
		t.Errorf("list_instances: %v %s", isErr, out)
	}
	if out, isErr := call(t, cs, "key", map[string]any{"keys": "ctrl+alt+delete", "instance": 0}); isErr || len(a.input) != 1 {
		t.Errorf("key: %v %s", isErr, out)
	} else if got := asJSON(a.input[0]); got != `[{"chord":["ctrl","alt","delete"]}]` {
		t.Errorf("key sent %s", got)
	}
	if out, isErr := call(t, cs, "key", map[string]any{"keys": "ctrl+dlete"}); !isErr || !strings.Contains(out, `did you mean "delete"`) || len(a.input) != 1 {
		t.Errorf("misspelt key: %v %s, %d batches sent", isErr, out, len(a.input))
	}
	// The bottom-right pixel of a 640x480 screen is the far corner of the
	// absolute range; the screen size is asked for each time.
	if out, isErr := call(t, cs, "click", map[string]any{"x": 639, "y": 479, "double": true}); isErr || a.shots != 1 {
		t.Errorf("click: %v %s", isErr, out)
	} else if got := asJSON(a.input[1]); got != `[{"abs":{"x":32767,"y":32767}},{"button":{"button":"left","down":true}},{"button":{"button":"left","down":false}},{"button":{"button":"left","down":true}},{"button":{"button":"left","down":false}}]` {
		t.Errorf("click sent %s", got)
	}
	if out, isErr := call(t, cs, "click", map[string]any{"x": 640, "y": 0}); !isErr || !strings.Contains(out, "outside guest 0's 640x480 screen") {
		t.Errorf("click off screen: %v %s", isErr, out)
	}
	if out, isErr := call(t, cs, "move", map[string]any{"dx": 5, "dy": -2}); isErr {
		t.Errorf("move: %s", out)
	} else if got := asJSON(a.input[len(a.input)-1]); got != `[{"rel":{"dx":5,"dy":-2}}]` {
		t.Errorf("move sent %s", got)
	}
	if out, isErr := call(t, cs, "move", map[string]any{"dx": 5, "x": 1, "y": 1}); !isErr || !strings.Contains(out, "not both") {
		t.Errorf("move with both: %v %s", isErr, out)
	}
	if out, isErr := call(t, cs, "type", map[string]any{"text": "hello\n", "instance": "m-0"}); isErr || len(a.typed) != 1 || a.typed[0] != "hello\n" {
		t.Errorf("type: %v %s %q", isErr, out, a.typed)
	}
	if out, isErr := call(t, cs, "screenshot", map[string]any{"instance": "m-7"}); !isErr || !strings.Contains(out, `no instance "m-7"`) {
		t.Errorf("screenshot of a missing guest: %v %s", isErr, out)
	}
}
