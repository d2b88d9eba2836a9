package sunshine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/locolan/loco/sdk"
)

// api is a client of one Sunshine's own HTTPS API (the web UI's port,
// base+1), authenticated with the credentials loco set, and pinned to the
// certificate loco wrote for that host.
type api struct {
	base       string
	user, pass string
	http       *http.Client
}

func newAPI(g guestPlan, user, pass string) (*api, error) {
	pemBytes, err := os.ReadFile(g.cert())
	if err != nil {
		return nil, fmt.Errorf("reading %s's certificate: %w", g.Name, err)
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM certificate", g.cert())
	}
	want := blk.Bytes
	tc := &tls.Config{
		// Sunshine's certificate is self-signed and names no host: it is
		// checked byte for byte against the one loco wrote instead.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return errors.New("the API's certificate is not the one loco wrote for this host")
			}
			return nil
		},
	}
	return &api{base: fmt.Sprintf("https://127.0.0.1:%d", g.apiPort()), user: user, pass: pass,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

func (a *api) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("Sunshine's API does not answer: %v: %w", err, sdk.ErrNotReady)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Sunshine's API: %s %s: %s %.200s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("Sunshine's API: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// health asks for the host's apps: an answer means Sunshine is up and
// knows its configuration.
func (a *api) health(ctx context.Context) (string, error) {
	var apps struct {
		Apps []struct {
			Name string `json:"name"`
		} `json:"apps"`
	}
	if err := a.do(ctx, "GET", "/api/apps", nil, &apps); err != nil {
		return "", err
	}
	return fmt.Sprintf("Sunshine up, %d app(s)", len(apps.Apps)), nil
}

// pair hands Moonlight's PIN to Sunshine, which is waiting for it while
// the client shows the PIN.
func (a *api) pair(ctx context.Context, pin, name string) error {
	var out struct {
		Status any    `json:"status"`
		Error  string `json:"error"`
	}
	if err := a.do(ctx, "POST", "/api/pin", map[string]string{"pin": pin, "name": name}, &out); err != nil {
		return err
	}
	if out.Status == true || out.Status == "true" {
		return nil
	}
	return fmt.Errorf("Sunshine refused the PIN (no Moonlight client is waiting with it%s): %w", orEmpty(out.Error), sdk.ErrInvalid)
}

func orEmpty(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
