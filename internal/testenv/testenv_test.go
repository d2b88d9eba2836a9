package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBinariesAndGuest(t *testing.T) {
	bin := Binaries(t)
	if st, err := os.Stat(filepath.Join(bin, "loco")); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("loco binary: %v", err)
	}
	g := TestGuest(t)
	for _, f := range []string{"vmlinuz", "initrd.img", "base.qcow2"} {
		if _, err := os.Stat(filepath.Join(g, f)); err != nil {
			t.Error(err)
		}
	}
	if len(ShortTempDir(t)) > 40 {
		t.Error("ShortTempDir is not short")
	}
}

func TestMain(m *testing.M) { os.Exit(Main(m)) }
