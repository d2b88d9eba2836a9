package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func write(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.scenario.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadInTreeScenarios(t *testing.T) {
	for _, f := range []string{"lan-game.scenario.hcl", "lego-loco.scenario.hcl"} {
		s, _, diags := Load(filepath.Join("..", "..", "configs", f))
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		if len(s.Steps) < 3 || !filepath.IsAbs(s.Spec) {
			t.Errorf("%s: %d steps, spec %s", f, len(s.Steps), s.Spec)
		}
	}
}

// Each broken file's first error must point at the line and column of the
// mistake.
func TestLoadErrorsHavePositions(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "scenario \"x\" {\n  spec = \n}\n", ":2:10"},
		{"unknown attribute", "scenario \"x\" {\n  spec = \"a.hcl\"\n  step \"a\" {\n    guests = [0]\n    keys = [\"f5\"]\n    kes = 1\n  }\n}\n", ":6:5"},
		{"bad colour", "scenario \"x\" {\n  spec = \"a.hcl\"\n  step \"a\" {\n    guests = [0]\n    screen {\n      region = [0, 0, 1, 1]\n      color = \"green\"\n    }\n  }\n}\n", ":5:5"},
		{"bad timeout", "scenario \"x\" {\n  spec = \"a.hcl\"\n  timeout = \"soon\"\n  step \"a\" {\n    guests = [0]\n    keys = [\"f5\"]\n  }\n}\n", ":3:13"},
		{"empty step", "scenario \"x\" {\n  spec = \"a.hcl\"\n  step \"a\" {\n    guests = [0]\n  }\n}\n", ":3:3"},
		{"bad regexp", "scenario \"x\" {\n  spec = \"a.hcl\"\n  step \"a\" {\n    guests = [0]\n    console = \"(\"\n  }\n}\n", ":3:3"},
		{"wrong type", "scenario \"x\" {\n  spec = \"a.hcl\"\n  step \"a\" {\n    guests = \"all\"\n    keys = [\"f5\"]\n  }\n}\n", ":4:15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.src)
			_, _, diags := Load(p)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			d := diags[0]
			got := ""
			if d.Subject != nil {
				got = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			}
			if !strings.HasSuffix(got, tc.want) || !strings.HasPrefix(got, p) {
				t.Errorf("error %q at %q, want %s%s", d.Summary, got, p, tc.want)
			}
		})
	}
}

func TestRuleFraction(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 100; x++ {
			c := color.RGBA{0, 0, 0, 255}
			if x < 50 {
				c = color.RGBA{10, 200, 5, 255}
			}
			img.Set(x, y, c)
		}
	}
	r := Rule{X: 25, Y: 0, W: 50, H: 10, Color: color.RGBA{0, 200, 0, 255}, Tolerance: 16}
	if f := r.Fraction(img); f != 0.5 {
		t.Errorf("half the region is green, got %v", f)
	}
	r.X = 90 // partly off the screen: the outside never matches
	r.W = 20
	if f := r.Fraction(img); f != 0 {
		t.Errorf("got %v", f)
	}
}

// fakeCluster is a stand-in for a running cluster (the real one is
// cmd/loco's TestScenarioLANGame): a guest turns its screen green when it
// gets F5, except the ones in deaf.
type fakeCluster struct {
	mu      sync.Mutex
	green   map[int]bool
	deaf    map[int]bool
	console map[int]string
}

func (f *fakeCluster) PressKeys(_ context.Context, g int, keys []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keys[0] == "f5" && !f.deaf[g] {
		f.green[g] = true
		f.console[g] += "LOCO-GAME hosting\n"
	}
	return nil
}
func (f *fakeCluster) Type(context.Context, int, string) error { return errors.New("not supported") }
func (f *fakeCluster) Screenshot(_ context.Context, g int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	if f.green[g] {
		for i := range img.Pix {
			if i%4 == 1 || i%4 == 3 {
				img.Pix[i] = 255
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes(), nil
}
func (f *fakeCluster) Console(g int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "LOCO-READY\n" + f.console[g], nil
}

func TestRunStandIn(t *testing.T) {
	p := write(t, `scenario "t" {
  spec = "x.hcl"
  step "ready" {
    guests = [0, 1]
    console_seen = ["LOCO-READY"]
  }
  step "go" {
    guests  = [0, 1]
    keys    = ["f5"]
    console = "hosting"
    timeout = "2s"
    screen {
      region = [0, 0, 40, 30]
      color  = "#00ff00"
    }
  }
}
`)
	s, files, diags := Load(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	_ = files
	art := t.TempDir()
	f := &fakeCluster{green: map[int]bool{}, deaf: map[int]bool{}, console: map[int]string{}}
	rep, err := Run(context.Background(), s, f, art)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 2 || rep.Steps[1].Guests[1].Screenshot == "" {
		t.Fatalf("report %+v", rep)
	}

	f = &fakeCluster{green: map[int]bool{}, deaf: map[int]bool{1: true}, console: map[int]string{}}
	t0 := time.Now()
	rep, err = Run(context.Background(), s, f, art)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "go" || se.Guest != 1 || se.Screenshot == "" {
		t.Fatalf("want guest 1 failing step go with a screenshot, got %v", err)
	}
	if _, serr := os.Stat(se.Screenshot); serr != nil {
		t.Error(serr)
	}
	if rep.Failed != "go" || time.Since(t0) > 20*time.Second {
		t.Errorf("failed=%q after %v", rep.Failed, time.Since(t0))
	}
	t.Log(err)
}
