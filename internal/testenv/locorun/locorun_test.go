package locorun

import (
	"os"
	"testing"

	"github.com/locolan/loco/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestSpecIsValidAndTracked checks the harness's own promises without
// booting a guest: the spec it writes passes the real loco's validate, the
// binary runs with the private state directory, and a spec is tracked once
// however often it is written.
func TestSpecIsValidAndTracked(t *testing.T) {
	h := New(t)
	spec := h.Spec("harness", 2, "")
	h.Spec("harness", 2, "")
	h.Track(spec)
	if len(h.Specs) != 1 {
		t.Errorf("tracked %v, want the one spec once", h.Specs)
	}
	out := h.MustRun("validate", spec)
	t.Logf("validate: %s", out)
	if _, _, code := h.Run("no-such-command"); code == 0 {
		t.Error("loco no-such-command exited 0")
	}
}
