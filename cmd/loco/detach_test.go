package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// fakeDaemon plays the background process of `loco run --detach` (runDetached
// re-executes os.Executable, this test binary): "liar" prints the text the
// old handshake scraped for and exits 3 without ever signalling; "honest"
// signals ready over the pipe and lingers like a daemon.
func fakeDaemon(role string) {
	claimReadyPipe()
	switch role {
	case "liar":
		fmt.Println("cluster x: 1 guests\nready")
		time.Sleep(500 * time.Millisecond)
		os.Exit(3)
	case "honest":
		fmt.Println("logs: /nowhere/loco.log")
		signalReady("cluster x: 1 guests, accelerator tcg\n")
		time.Sleep(2 * time.Second)
		os.Exit(0)
	}
	os.Exit(2)
}

// TestDetachWaitsForTheReadyPipe: --detach returns success only when the
// background loco says so over its inherited pipe. A daemon that prints
// "ready" and dies is a failure with its exit code (the old handshake, which
// scraped the log for "ready", called it started).
func TestDetachWaitsForTheReadyPipe(t *testing.T) {
	run := func(role string) (string, error) {
		t.Setenv("LOCO_TEST_DAEMON", role)
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := runDetached(cmd, "x.hcl", nil, "")
		return out.String(), err
	}
	out, err := run("liar")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Errorf("a daemon that printed ready and died: %v, want exit 3\n%s", err, out)
	}
	start := time.Now()
	out, err = run("honest")
	took := time.Since(start)
	t.Logf("ready after %v", took)
	if err != nil || !strings.Contains(out, "cluster x: 1 guests, accelerator tcg") || !strings.Contains(out, "loco runs in the background") || !strings.Contains(out, "logs: /nowhere/loco.log") {
		t.Errorf("an honest daemon: %v\n%s", err, out)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("runDetached waited %v, beyond the daemon's ready (it lingers 2 s): it waited for exit, not the pipe", took)
	}
}
