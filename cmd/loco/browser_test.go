package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/locolan/loco/internal/testenv"
)

// chromium is Debian's headless Chromium (make deps installs it); nothing
// downloads a browser.
const chromium = "/usr/bin/chromium"

// startChromium starts headless Chromium with a fresh profile and returns the
// context of its first tab; both end with the test.
func startChromium(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing: run make deps (Debian package chromium)", chromium)
	}
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Background tabs (the second viewer) must keep decoding.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1600, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	if err := chromedp.Do(ctx); err != nil {
		cancelAlloc()
		t.Fatalf("starting %s: %v", chromium, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// chromiumTab opens another tab in the same browser.
func chromiumTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return tab
}

// pageEval evaluates expr (awaiting a promise) and decodes its value.
func pageEval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", firstLineOf(expr), err)
	}
	return v
}

// pageWait polls expr until it is true.
func pageWait(t testing.TB, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if pageEval[bool](t, ctx, expr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i] + "…"
	}
	return s
}

// pageKey sends a key down and up as a real keyboard would, by its
// KeyboardEvent.code, through the DevTools input domain (a trusted event).
func pageKey(t testing.TB, ctx context.Context, code, key string, vk int64) {
	t.Helper()
	press := func(typ input.DispatchKeyEventType) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Code: code, Key: key, WindowsVirtualKeyCode: vk})
			return err
		})
	}
	if err := chromedp.Do(ctx, press(input.DispatchKeyEventTypeRawKeyDown), press(input.DispatchKeyEventTypeKeyUp)); err != nil {
		t.Fatalf("pressing %s: %v", code, err)
	}
}

// artifactPath is where a test leaves files for a person to look at.
func artifactPath(t testing.TB, name string) string {
	dir := filepath.Join(testenv.RepoRoot(), "build", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

func pageShot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifactPath(t, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// childPID finds the running plugin binary named name among the children
// of the loco daemon.
func childPID(t testing.TB, locoPID int, name string) int {
	t.Helper()
	// -f: the 15-character comm cannot hold the plugin's name.
	out, _ := exec.Command("pgrep", "-P", fmt.Sprint(locoPID), "-f", name).Output()
	var pid int
	fmt.Sscan(strings.TrimSpace(string(out)), &pid)
	if pid == 0 {
		t.Fatalf("no %s under loco (pid %d)", name, locoPID)
	}
	return pid
}
