package sunshine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sunshine derives every port from its base port ("port", 47989 by
// default): HTTPS -5, HTTP 0, web UI and API +1, video/control/audio UDP
// +9..+11, RTSP +21. portStride spaces the instances' families so they
// never overlap (27 ports wide, 100 apart: instance i's base is
// base_port + 100*i, easy to read off).
const (
	portLow    = -5
	portHigh   = 21
	portStride = 100
)

// guestPlan is one instance's Sunshine: its X display, ports and files.
type guestPlan struct {
	Index    uint32
	Name     string
	Display  string // ":N"
	BasePort int    // what a Moonlight client adds (Sunshine's HTTP port)
	Dir      string // <guest dir>/sunshine
}

func (g guestPlan) apiPort() int       { return g.BasePort + 1 }
func (g guestPlan) conf() string       { return filepath.Join(g.Dir, "sunshine.conf") }
func (g guestPlan) apps() string       { return filepath.Join(g.Dir, "apps.json") }
func (g guestPlan) state() string      { return filepath.Join(g.Dir, "sunshine_state.json") }
func (g guestPlan) cert() string       { return filepath.Join(g.Dir, "cacert.pem") }
func (g guestPlan) key() string        { return filepath.Join(g.Dir, "cakey.pem") }
func (g guestPlan) creds() string      { return filepath.Join(g.Dir, "api-credentials") }
func (g guestPlan) log() string        { return filepath.Join(g.Dir, "sunshine.log") }
func (g guestPlan) xvfbLog() string    { return filepath.Join(g.Dir, "xvfb.log") }
func (g guestPlan) ports() [2]int      { return [2]int{g.BasePort + portLow, g.BasePort + portHigh} }
func (g guestPlan) displayNum() string { return strings.TrimPrefix(g.Display, ":") }

// portPlan writes the plan as a table, one instance a line.
func portPlan(gs []guestPlan) string {
	var b strings.Builder
	b.WriteString("instance  display  moonlight  https  api    udp          rtsp   family\n")
	for _, g := range gs {
		fmt.Fprintf(&b, "%-9s %-8s %-10d %-6d %-6d %d-%d  %-6d %d-%d\n", g.Name, g.Display, g.BasePort, g.BasePort-5, g.apiPort(),
			g.BasePort+9, g.BasePort+11, g.BasePort+21, g.ports()[0], g.ports()[1])
	}
	return b.String()
}

// renderConf is the instance's sunshine.conf. Everything Sunshine keeps
// goes into the instance's own directory, so instances share nothing.
func renderConf(g guestPlan) string {
	lines := [][2]string{
		{"sunshine_name", g.Name},
		{"port", fmt.Sprint(g.BasePort)},
		// X11 capture of the instance's own Xvfb (DISPLAY is set to it);
		// software encoding: an Xvfb has no GPU to hand frames to.
		{"capture", "x11"},
		{"encoder", "software"},
		{"file_apps", g.apps()},
		{"file_state", g.state()},
		{"credentials_file", g.state()},
		{"cert", g.cert()},
		{"pkey", g.key()},
		{"log_path", g.log()},
		// The web UI and API only from this host: loco forwards pairing.
		{"origin_web_ui_allowed", "pc"},
		{"upnp", "disabled"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by loco's stream \"sunshine\" plugin for %s; rewritten at every start.\n", g.Name)
	for _, l := range lines {
		fmt.Fprintf(&b, "%s = %s\n", l[0], l[1])
	}
	return b.String()
}

// renderApps is the instance's apps.json: one app, the guest's screen
// (the whole X display QEMU's window fills), started by nothing.
func renderApps(g guestPlan) string {
	apps := map[string]any{
		"env": map[string]string{},
		"apps": []map[string]any{{
			"name":       g.Name,
			"output":     "",
			"cmd":        "",
			"detached":   []string{},
			"image-path": "",
		}},
	}
	b, _ := json.MarshalIndent(apps, "", "  ")
	return string(b) + "\n"
}

// writeFiles writes the instance's configuration, and the key, certificate
// and API credentials once (Moonlight clients paired with this host trust
// its certificate, so it must survive restarts).
func writeFiles(g guestPlan) (user, pass string, err error) {
	if err := os.MkdirAll(g.Dir, 0o700); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", g.Dir, err)
	}
	for path, body := range map[string]string{g.conf(): renderConf(g), g.apps(): renderApps(g)} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return "", "", fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if _, err := os.Stat(g.cert()); err != nil {
		if err := writeCert(g); err != nil {
			return "", "", err
		}
	}
	return credentials(g.creds())
}

// writeCert makes the host's self-signed certificate. loco pins it when it
// calls Sunshine's API, instead of trusting any certificate on the port.
func writeCert(g guestPlan) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("making %s's key: %w", g.Name, err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "Sunshine Gamestream Host " + g.Name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0),
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("making %s's certificate: %w", g.Name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(g.key(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", g.key(), err)
	}
	return os.WriteFile(g.cert(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

// credentials reads, or makes once, the instance's API user and password.
func credentials(path string) (string, string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if u, p, ok := strings.Cut(strings.TrimSpace(string(b)), ":"); ok && u != "" && p != "" {
			return u, p, nil
		}
	}
	raw := make([]byte, 18)
	rand.Read(raw)
	user, pass := "loco", fmt.Sprintf("%x", raw)
	if err := os.WriteFile(path, []byte(user+":"+pass+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", path, err)
	}
	return user, pass, nil
}
