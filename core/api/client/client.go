// Package client is the Go client of loco's HTTP API (core/api): the wire
// types and header names are the server's own, so the two cannot drift.
// cmd/loco (status, lan, mcp) and the tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/supervise"
	"github.com/locolan/loco/sdk"
)

// Client talks to one running loco's API.
type Client struct {
	base, token string
	http        *http.Client
	// RetryFor bounds how long a GET that meets 503 (a plugin restarting,
	// in well under a second) is tried again; 0 never retries. Input is
	// never retried: a batch cut short may have been partly delivered.
	RetryFor time.Duration
}

// New makes a client of the API at base ("http://127.0.0.1:7780") with
// its bearer token. hc nil means a client without a timeout of its own
// (streams such as Capture last as long as their context).
func New(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: hc, RetryFor: 10 * time.Second}
}

// Base is the API's address.
func (c *Client) Base() string { return c.base }

// Error is the API's answer to a request it refused: its status and its
// own message.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// StatusOf is the API status inside err, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do makes one request and returns the response of a 2xx answer; any other
// answer is an *Error. body is JSON-encoded unless it is an io.Reader.
func (c *Client) Do(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	deadline := time.Now().Add(c.RetryFor)
	for {
		resp, err := c.once(ctx, method, path, body, header)
		if method != http.MethodGet || StatusOf(err) != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encoding the body of %s %s: %w", method, path, err)
		}
		rd, contentType = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling loco's API at %s: %w", c.base, err)
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
		return nil, &Error{Method: method, Path: path, Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// call makes a JSON request and decodes the answer into out (nil: drop it).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.Do(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func instancePath(id, rest string) string { return "/api/instances/" + url.PathEscape(id) + rest }

// Instances lists the guests.
func (c *Client) Instances(ctx context.Context) ([]api.Instance, error) {
	var out []api.Instance
	return out, c.call(ctx, http.MethodGet, "/api/instances", nil, &out)
}

// Events are the recent guest events.
func (c *Client) Events(ctx context.Context) ([]supervise.Event, error) {
	var out []supervise.Event
	return out, c.call(ctx, http.MethodGet, "/api/events", nil, &out)
}

// LANStatus is the network plugin's view of the LAN.
func (c *Client) LANStatus(ctx context.Context) (sdk.LANStatus, error) {
	var out sdk.LANStatus
	return out, c.call(ctx, http.MethodGet, "/api/lan-status", nil, &out)
}

// Capture opens the LAN's pcap stream; the caller reads and closes the
// body, and then finds api.TrailerFrames and api.TrailerDropped in
// resp.Trailer.
func (c *Client) Capture(ctx context.Context, q url.Values) (*http.Response, error) {
	return c.Do(ctx, http.MethodGet, "/api/lan/capture?"+q.Encode(), nil, nil)
}

// Input delivers a batch of events (see Event) to guest id.
func (c *Client) Input(ctx context.Context, id string, events ...Event) (api.InputResult, error) {
	var out api.InputResult
	return out, c.call(ctx, http.MethodPost, instancePath(id, "/input"), map[string][]Event{"events": events}, &out)
}

// Type types text on guest id's US keyboard.
func (c *Client) Type(ctx context.Context, id, text string) (api.TypeResult, error) {
	var out api.TypeResult
	return out, c.call(ctx, http.MethodPost, instancePath(id, "/type"), map[string]string{"text": text}, &out)
}

// Screenshot is a guest's screen as a PNG and its size.
type Screenshot struct {
	PNG           []byte
	Width, Height int
}

// Screenshot takes one of guest id's screen.
func (c *Client) Screenshot(ctx context.Context, id string) (Screenshot, error) {
	resp, err := c.Do(ctx, http.MethodGet, instancePath(id, "/screenshot"), nil, nil)
	if err != nil {
		return Screenshot{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Screenshot{}, fmt.Errorf("reading guest %s's screenshot: %w", id, err)
	}
	w, _ := strconv.Atoi(resp.Header.Get(api.HeaderWidth))
	h, _ := strconv.Atoi(resp.Header.Get(api.HeaderHeight))
	if w <= 0 || h <= 0 {
		return Screenshot{}, fmt.Errorf("guest %s's screenshot came without its size", id)
	}
	return Screenshot{PNG: b, Width: w, Height: h}, nil
}
