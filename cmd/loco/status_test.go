package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locolan/loco/core/api"
	"github.com/locolan/loco/core/cluster"
	"github.com/locolan/loco/core/plan"
	"github.com/locolan/loco/core/supervise"
)

// restartingBackend stands in for a supervising loco whose guest is in its
// restart backoff (its QEMU is gone; the supervisor waits to start it
// again), behind the real API server.
type restartingBackend struct{ p *plan.Plan }

func (b restartingBackend) Plan() *plan.Plan { return b.p }
func (b restartingBackend) Guests() []supervise.GuestStatus {
	return []supervise.GuestStatus{{Index: 0, Name: "st-0", State: supervise.Restarting, Restarts: 1}}
}
func (b restartingBackend) Events() []supervise.Event    { return nil }
func (b restartingBackend) Network() api.NetworkPlugin   { return nil }
func (b restartingBackend) Input() api.InputPlugin       { return nil }
func (b restartingBackend) Stream() api.StreamPlugin     { return nil }
func (b restartingBackend) Plugins() []api.PluginProcess { return nil }

// TestStatusAgreesWithTheAPI: during a restart backoff `loco status` says
// what the API says, restarting, where it used to say stopped (it only
// looked for the guest's process).
func TestStatusAgreesWithTheAPI(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LOCO_STATE_DIR", root)
	dir := filepath.Join(root, "st")
	os.MkdirAll(filepath.Join(dir, "guests", "0"), 0o700)
	p := &plan.Plan{Cluster: "st", StateDir: dir, Runtime: "process", Accel: "tcg",
		Guests: []plan.Guest{{Index: 0, Name: "st-0", Dir: filepath.Join(dir, "guests", "0")}}}
	const tok = "status-test-token-01234"
	srv := httptest.NewServer(api.New(restartingBackend{p}, tok, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	st := cluster.State{Cluster: "st", LocoPID: os.Getpid(), APIListen: strings.TrimPrefix(srv.URL, "http://"), Plan: p, Updated: time.Now()}
	b, _ := json.Marshal(st)
	os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600)
	os.WriteFile(filepath.Join(dir, "api-token"), []byte(tok+"\n"), 0o600)

	status := func() (string, string) {
		t.Helper()
		var human, js bytes.Buffer
		for _, run := range []struct {
			args []string
			out  *bytes.Buffer
		}{{[]string{"status", "st"}, &human}, {[]string{"status", "--json", "st"}, &js}} {
			root := newRoot()
			root.SetArgs(run.args)
			root.SetOut(run.out)
			root.SetErr(io.Discard)
			if err := root.Execute(); err != nil {
				t.Fatalf("loco %v: %v", run.args, err)
			}
		}
		return human.String(), js.String()
	}

	// No loco holds the lock: the state directory alone says stopped.
	human, js := status()
	if !regexp.MustCompile(`st-0\s+stopped`).MatchString(human) || !strings.Contains(js, `"state": "stopped"`) {
		t.Errorf("without a loco:\n%s\n%s", human, js)
	}
	// A loco supervises it (this process holds the lock, its API answers).
	lock, err := os.OpenFile(filepath.Join(dir, "loco.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	lock.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	human, js = status()
	if !regexp.MustCompile(`st-0\s+restarting`).MatchString(human) || !strings.Contains(js, `"state": "restarting"`) {
		t.Errorf("with a supervising loco whose API says restarting:\n%s\n%s", human, js)
	}
}
