package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
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

// TestHarness: WaitFor returns once its condition holds, and SyncBuffer
// takes concurrent writes whole.
func TestHarness(t *testing.T) {
	n := 0
	took := WaitFor(t, "three polls", 5*time.Second, func() bool { n++; return n >= 3 })
	if n != 3 || took < 100*time.Millisecond {
		t.Errorf("polled %d times in %v", n, took)
	}
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Write([]byte("0123456789")) }()
	}
	wg.Wait()
	if len(b.String()) != 100 {
		t.Errorf("%d bytes", len(b.String()))
	}
}
