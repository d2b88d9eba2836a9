package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// mcpSession speaks MCP's stdio transport by hand, newline-delimited
// JSON-RPC 2.0, so the test checks the wire rather than trusting one SDK to
// understand itself.
type mcpSession struct {
	t      *testing.T
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *bytes.Buffer
	nextID int
}

type rpcReply struct {
	ID     *int            `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *mcpSession) notify(method string) {
	s.t.Helper()
	fmt.Fprintf(s.in, `{"jsonrpc":"2.0","method":%q}`+"\n", method)
}

// call sends a request and waits for its reply, skipping the server's
// notifications; out receives the result.
func (s *mcpSession) call(method string, params, out any) {
	s.t.Helper()
	s.nextID++
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": s.nextID, "method": method, "params": params})
	if _, err := s.in.Write(append(req, '\n')); err != nil {
		s.t.Fatalf("writing %s: %v (stderr: %s)", method, err, s.stderr)
	}
	for {
		line, err := s.out.ReadBytes('\n')
		if err != nil {
			s.t.Fatalf("reading the reply to %s: %v (stderr: %s)", method, err, s.stderr)
		}
		var r rpcReply
		if err := json.Unmarshal(line, &r); err != nil {
			s.t.Fatalf("stdout carries something that is not JSON-RPC: %q", line)
		}
		if r.ID == nil || *r.ID != s.nextID {
			continue
		}
		if r.Error != nil {
			s.t.Fatalf("%s: error %d %s", method, r.Error.Code, r.Error.Message)
		}
		if err := json.Unmarshal(r.Result, out); err != nil {
			s.t.Fatalf("%s: result %s: %v", method, r.Result, err)
		}
		return
	}
}

type toolResult struct {
	IsError bool `json:"isError"`
	Content []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Data     string `json:"data"`
		MIMEType string `json:"mimeType"`
	} `json:"content"`
}

func (s *mcpSession) tool(name string, args map[string]any) toolResult {
	s.t.Helper()
	var r toolResult
	s.call("tools/call", map[string]any{"name": name, "arguments": args}, &r)
	return r
}

func (r toolResult) text() string {
	var b []string
	for _, c := range r.Content {
		if c.Type == "text" {
			b = append(b, c.Text)
		}
	}
	return strings.Join(b, "\n")
}

// testMCP runs `loco mcp` against the running cluster of TestInputAPI.
func testMCP(t *testing.T, c *inputCluster) {
	cmd := exec.Command(c.Bin, "mcp", c.spec)
	cmd.Env = append(os.Environ(), "LOCO_STATE_DIR="+c.StateDir, "XDG_CACHE_HOME="+filepath.Join(c.Dir, "cache"))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Error("loco mcp did not exit when its stdin closed")
		}
	})
	s := &mcpSession{t: t, in: stdin, out: bufio.NewReader(stdout), stderr: &stderr}

	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct{ Name string }
		Capabilities    struct {
			Tools *struct{} `json:"tools"`
		}
		Instructions string
	}
	s.call("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "loco-e2e", "version": "1"}}, &init)
	if init.ServerInfo.Name != "loco" || init.Capabilities.Tools == nil || init.ProtocolVersion != "2025-06-18" || init.Instructions == "" {
		t.Errorf("initialize: %+v", init)
	}
	s.notify("notifications/initialized")

	t.Run("tools/list", func(t *testing.T) {
		var list struct {
			Tools []struct {
				Name        string
				Description string
				InputSchema struct {
					Type       string
					Properties map[string]json.RawMessage
					Required   []string
				}
			}
		}
		s.call("tools/list", map[string]any{}, &list)
		var names []string
		props := map[string][]string{}
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
			if tl.Description == "" || tl.InputSchema.Type != "object" {
				t.Errorf("tool %s: %+v", tl.Name, tl)
			}
			for p := range tl.InputSchema.Properties {
				props[tl.Name] = append(props[tl.Name], p)
			}
			sort.Strings(props[tl.Name])
		}
		sort.Strings(names)
		if strings.Join(names, " ") != "click key list_instances move screenshot type" {
			t.Errorf("tools: %v", names)
		}
		for tool, want := range map[string]string{"screenshot": "instance", "click": "button double instance x y",
			"move": "dx dy instance x y", "type": "instance text", "key": "instance keys"} {
			if got := strings.Join(props[tool], " "); got != want {
				t.Errorf("%s takes %q, want %q", tool, got, want)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		r := s.tool("screenshot", map[string]any{"instance": 0})
		if r.IsError || len(r.Content) == 0 || r.Content[0].Type != "image" || r.Content[0].MIMEType != "image/png" {
			t.Fatalf("%+v", r)
		}
		b, err := base64.StdEncoding.DecodeString(r.Content[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		w, h := c.vncSize(0)
		if img.Bounds().Dx() != w || img.Bounds().Dy() != h || !strings.Contains(r.text(), fmt.Sprintf("%dx%d", w, h)) {
			t.Errorf("screenshot %v, %q; the guest's display is %dx%d", img.Bounds(), r.text(), w, h)
		}
	})

	t.Run("type and key reach the guest", func(t *testing.T) {
		off := c.serialSize(0)
		if r := s.tool("type", map[string]any{"instance": "inp-0", "text": "ok"}); r.IsError {
			t.Fatal(r.text())
		}
		if r := s.tool("key", map[string]any{"keys": "shift+k"}); r.IsError {
			t.Fatal(r.text())
		}
		want := append(expectTyped(t, "ok"), expectTyped(t, "K")...)
		if got := c.waitEvents(0, off, len(want), evKey); !sameEvents(got, want) {
			t.Errorf("guest got %v, want %v", got, want)
		}
	})

	t.Run("relative move and click reach the guest", func(t *testing.T) {
		off := c.serialSize(0)
		if r := s.tool("move", map[string]any{"instance": "0", "dx": 5, "dy": 6}); r.IsError {
			t.Fatal(r.text())
		}
		if r := s.tool("click", map[string]any{"instance": "0", "button": "right"}); r.IsError {
			t.Fatal(r.text())
		}
		want := []guestEvent{{evRel, relX, 5}, {evRel, relY, 6}, {evKey, 273, 1}, {evKey, 273, 0}}
		if got := c.waitEvents(0, off, len(want), evKey, evRel); !sameEvents(got, want) {
			t.Errorf("guest got %v, want %v", got, want)
		}
	})

	t.Run("tool errors say what was wrong", func(t *testing.T) {
		cases := []struct {
			tool string
			args map[string]any
			want string
		}{
			{"click", map[string]any{"instance": 0, "x": 10, "y": 10}, "no absolute pointer device"},
			{"click", map[string]any{"instance": 1, "x": 5000, "y": 10}, "outside guest 1's"},
			{"type", map[string]any{"text": "ünïcödé"}, "no key on a US keyboard"},
			{"key", map[string]any{"keys": "ctrl+alt+dlete"}, `did you mean "delete"`},
			{"move", map[string]any{}, "give x and y"},
			{"screenshot", map[string]any{"instance": "inp-9"}, `no instance "inp-9"`},
		}
		for _, tc := range cases {
			if r := s.tool(tc.tool, tc.args); !r.IsError || !strings.Contains(r.text(), tc.want) {
				t.Errorf("%s %v: %+v, want an error with %q", tc.tool, tc.args, r, tc.want)
			}
		}
	})

	t.Run("list_instances", func(t *testing.T) {
		r := s.tool("list_instances", map[string]any{})
		if r.IsError || !strings.Contains(r.text(), `"name": "inp-1"`) || !strings.Contains(r.text(), `"state": "running"`) {
			t.Errorf("%+v", r)
		}
	})
}
