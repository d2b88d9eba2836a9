package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// client is the cluster's HTTP API with its bearer token.
type client struct {
	base, token string
	http        *http.Client
}

func newClient(base, token string) *client {
	return &client{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

func (c *client) do(ctx context.Context, method, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))}
	}
	return b, nil
}

// apiError is an answer other than 200, so callers can tell "this cluster
// has no such plugin" (404) from a failure.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == status
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	b, err := c.do(ctx, "GET", path, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// lanStatus is the part of GET /api/lan-status the scenarios read.
type lanStatus struct {
	Drops map[string]uint64 `json:"drops"`
	Ports []struct {
		Instance  int      `json:"instance"`
		Name      string   `json:"name"`
		MAC       string   `json:"mac"`
		IPs       []string `json:"ips"`
		Reachable bool     `json:"reachable"`
		RTTMillis float64  `json:"rtt_ms"`
		RxFrames  uint64   `json:"rx_frames"`
		TxFrames  uint64   `json:"tx_frames"`
		RxBytes   uint64   `json:"rx_bytes"`
		TxBytes   uint64   `json:"tx_bytes"`
		Drops     uint64   `json:"drops"`
		// TxByEtherType is what the segment delivered to the guest.
		TxByEtherType map[string]struct {
			Frames uint64 `json:"frames"`
		} `json:"tx_by_ethertype"`
	} `json:"ports"`
}

func (c *client) lan(ctx context.Context) (lanStatus, error) {
	var st lanStatus
	err := c.getJSON(ctx, "/api/lan-status", &st)
	return st, err
}

type instance struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	State string `json:"state"`
}

func (c *client) instances(ctx context.Context) ([]instance, error) {
	var in []instance
	err := c.getJSON(ctx, "/api/instances", &in)
	return in, err
}

// metrics scrapes /metrics with Prometheus's parser.
func (c *client) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	b, err := c.do(ctx, "GET", "/metrics", "")
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return fams, nil
}

// waitFor polls ok every interval until it holds or ctx/timeout ends.
func waitFor(ctx context.Context, what string, timeout, interval time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		done, err := ok()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: not within %s (last error: %w)", what, timeout, last)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
