// Package testenv gives end-to-end tests what they run against: the loco and
// plugin binaries built from this checkout, and the test guest image. Both
// are built once per test binary; the guest image once per checkout.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RepoRoot is the checkout this package was compiled from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Main runs a package's tests and then removes what Binaries built; call it
// from TestMain: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// Binaries builds bin/loco and every plugin into a temporary directory
// shared by the tests of one test binary, and returns it.
func Binaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loco-bin-")
		if err != nil {
			binErr = err
			return
		}
		root := RepoRoot()
		targets := map[string]string{"loco": "./cmd/loco"}
		plugins, _ := filepath.Glob(filepath.Join(root, "plugins", "*"))
		for _, p := range plugins {
			targets["loco-plugin-"+filepath.Base(p)] = "./plugins/" + filepath.Base(p)
		}
		for name, pkg := range targets {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
				return
			}
		}
		binDir = dir
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

var (
	guestOnce sync.Once
	guestDir  string
	guestErr  error
)

// TestGuest returns the directory holding the test guest (vmlinuz,
// initrd.img, base.qcow2). It runs images/testguest/build.sh first, which
// does nothing (about a second) when its inputs are unchanged, so a test
// never boots a guest older than the agent's source. LOCO_TESTGUEST_DIR
// names a prebuilt guest to use as it is.
func TestGuest(t testing.TB) string {
	t.Helper()
	guestOnce.Do(func() {
		if dir := os.Getenv("LOCO_TESTGUEST_DIR"); dir != "" {
			guestDir = dir
			return
		}
		dir := filepath.Join(RepoRoot(), "build", "testguest")
		cmd := exec.Command(filepath.Join(RepoRoot(), "images", "testguest", "build.sh"), dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = fmt.Errorf("building the test guest (images/testguest/build.sh): %v\n%s", err, out)
			return
		}
		guestDir = dir
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestDir
}

// ShortTempDir is a temporary directory with a short path, removed after
// the test: unix socket paths must fit in 108 bytes.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
