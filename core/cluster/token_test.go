package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locolan/loco/core/spec"
)

// TestTokenFreshPerRun: without api.token every run gets a new token, kept
// 0600 in the state directory; the spec's token is used as it is.
func TestTokenFreshPerRun(t *testing.T) {
	dir := t.TempDir()
	c := &spec.Cluster{Name: "t"}
	first, err := token(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := token(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || len(second) != 32 {
		t.Errorf("two runs got tokens %q and %q: want two different 32-character tokens", first, second)
	}
	path := filepath.Join(dir, "api-token")
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != second {
		t.Errorf("api-token holds %q (%v), want the current token %q", b, err, second)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("api-token mode: %v %v", fi.Mode(), err)
	}
	c.API.Token = "spec-token-0123456789"
	if got, _ := token(c, dir); got != c.API.Token {
		t.Errorf("spec token: got %q", got)
	}
}
