package pluginhost

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locolan/loco/sdk"
)

// testCA issues certificates into directories laid out as a
// kubernetes.io/tls Secret with ca.crt (tls.crt, tls.key, ca.crt).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, dir string, usage x509.ExtKeyUsage) string {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: filepath.Base(dir)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.crt"), ca.pem, 0o600)
	return dir
}

// TestServeMutualTLS: `serve --tls-dir` serves gRPC only to clients with a
// certificate from the Secret's CA (no certificate, another CA's, or
// plaintext are refused), and lifts the loopback-only rule for --listen,
// which stays without it.
func TestServeMutualTLS(t *testing.T) {
	bin := filepath.Join(pluginDir, "loco-plugin-network-test")
	dir := t.TempDir()
	ca, other := newTestCA(t), newTestCA(t)
	server := ca.issue(t, filepath.Join(dir, "server"), x509.ExtKeyUsageServerAuth)
	client := ca.issue(t, filepath.Join(dir, "client"), x509.ExtKeyUsageClientAuth)
	rogue := other.issue(t, filepath.Join(dir, "rogue"), x509.ExtKeyUsageClientAuth)

	// A non-loopback address passes the check with --tls-dir: what fails
	// is the bind (192.0.2.1 is a documentation address, on no interface).
	out, err := exec.Command(bin, "serve", "--listen", "192.0.2.1:0", "--tls-dir", server).CombinedOutput()
	if err == nil || strings.Contains(string(out), "not a loopback address") || !strings.Contains(string(out), "listening on") {
		t.Errorf("non-loopback listen with --tls-dir: err %v, output %s", err, out)
	}
	if out, err := exec.Command(bin, "serve", "--listen", "192.0.2.1:0").CombinedOutput(); err == nil || !strings.Contains(string(out), "--tls-dir") {
		t.Errorf("non-loopback listen without TLS: err %v, output %s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--tls-dir", server)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(line)
	info := func(creds grpc.DialOption) (sdk.Info, error) {
		conn, err := grpc.NewClient(addr, creds)
		if err != nil {
			return sdk.Info{}, err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return sdk.NewClient(conn).Info(ctx)
	}
	good, err := sdk.MutualTLS(client, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := info(grpc.WithTransportCredentials(credentials.NewTLS(good))); err != nil || got.Name != "test" {
		t.Fatalf("a client with the CA's certificate: %+v, %v", got, err)
	}
	bad, err := sdk.MutualTLS(rogue, true)
	if err != nil {
		t.Fatal(err)
	}
	bad.RootCAs = good.RootCAs // it trusts the server; the server must not trust it
	noCert := &tls.Config{RootCAs: good.RootCAs, MinVersion: tls.VersionTLS13}
	for name, opt := range map[string]grpc.DialOption{
		"another CA's certificate": grpc.WithTransportCredentials(credentials.NewTLS(bad)),
		"no certificate":           grpc.WithTransportCredentials(credentials.NewTLS(noCert)),
		"plaintext":                grpc.WithTransportCredentials(insecure.NewCredentials()),
	} {
		if _, err := info(opt); err == nil {
			t.Errorf("a client with %s was served", name)
		}
	}
}
