package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locolan/loco/internal/scenario"
	"github.com/locolan/loco/internal/testenv"
)

// TestScenarioLANGame runs configs/lan-game.scenario.hcl with `loco
// scenario run` on three test guests with Lego Loco's hardware: guest 0
// hosts the agent's stand-in game, the others list its session and join
// by key presses, and the host's screen shows three players. Then a
// scenario that waits for guests 1 and 2 to show the host's green panel,
// which they never do, must fail naming the step and each guest's last
// screenshot.
func TestScenarioLANGame(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three guests")
	}
	e := newE2E(t)
	root := testenv.RepoRoot()
	if filepath.Join(root, "build", "testguest") != e.Guest {
		t.Fatalf("configs/lan-game.hcl boots build/testguest, but this run's guest is %s (LOCO_TESTGUEST_DIR)", e.Guest)
	}
	spec := filepath.Join(root, "configs", "lan-game.hcl")
	e.Track(spec)
	art := filepath.Join(root, "build", "artifacts", "scenario-e2e")
	os.RemoveAll(art)

	out, errOut, code := e.Run("scenario", "run", "--keep", "--var", "accel=tcg", "--artifacts", art,
		filepath.Join(root, "configs", "lan-game.scenario.hcl"))
	t.Logf("loco scenario run:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("the scenario failed (exit %d)", code)
	}
	var rep struct {
		scenario.Report
		LAN struct {
			Ports []struct {
				Name              string            `json:"name"`
				RxFrames          uint64            `json:"rx_frames"`
				FramesByEtherType map[string]uint64 `json:"frames_by_ethertype"`
			} `json:"ports"`
		} `json:"lan"`
	}
	b, err := os.ReadFile(filepath.Join(art, "lan-game", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, st := range rep.Steps {
		steps = append(steps, st.Name)
		for _, g := range st.Guests {
			if _, err := os.Stat(g.Screenshot); err != nil || g.Took <= 0 && st.Name != "ready" {
				t.Errorf("step %s guest %d: screenshot %q (%v), took %v", st.Name, g.Guest, g.Screenshot, err, g.Took)
			}
		}
	}
	if strings.Join(steps, ",") != "ready,host,list,join,players" {
		t.Errorf("steps %v", steps)
	}
	if len(rep.LAN.Ports) != 3 {
		t.Errorf("LAN counters for %d guests, want 3", len(rep.LAN.Ports))
	}
	for _, p := range rep.LAN.Ports {
		if p.RxFrames == 0 || p.FramesByEtherType["IPv4"] == 0 {
			t.Errorf("%s: no IPv4 traffic counted: %+v", p.Name, p)
		}
	}
	for _, g := range []int{0, 1, 2} {
		log := e.serialLog("lan-game", g)
		want := "LOCO-GAME joined host=lan-game-0 players="
		if g == 0 {
			want = "LOCO-GAME players=3 names=lan-game-0,"
		}
		if !strings.Contains(log, want) {
			t.Errorf("guest %d's console has no %q", g, want)
		}
	}

	// Guests 1 and 2 joined: their panels are blue, never the host's green.
	bad := filepath.Join(e.Dir, "stuck.scenario.hcl")
	if err := os.WriteFile(bad, []byte(`scenario "stuck" {
  spec = "`+spec+`"
  step "all-host" {
    guests  = [1, 2]
    timeout = "20s"
    screen {
      region = [20, 525, 200, 20]
      color  = "#00c800"
    }
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = e.Run("scenario", "run", "--var", "accel=tcg", "--artifacts", art, bad)
	t.Logf("the stuck scenario:\n%s%s", out, errOut)
	if code == 0 {
		t.Fatal("a scenario whose guests never reach a step passed")
	}
	for _, g := range []string{"1", "2"} {
		want := `step "all-host": guest ` + g + ` did not reach it`
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q", want)
		}
		shot := filepath.Join(art, "stuck", "01-all-host-guest"+g+".png")
		if _, err := os.Stat(shot); err != nil || !strings.Contains(errOut, shot) {
			t.Errorf("guest %s's last screenshot %s not saved or not named: %v", g, shot, err)
		}
	}
}
