package plan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locolan/loco/core/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const stateDir = "/var/lib/loco-test/lan"

func load(t testing.TB, path string) *spec.Cluster {
	t.Helper()
	l := spec.NewLoader()
	l.Environ = []string{}
	c, diags := l.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return c
}

func TestGolden(t *testing.T) {
	c := load(t, "testdata/lan.hcl")
	in := Inputs{StateDir: stateDir, Accel: "tcg", AccelReason: "forced by the test",
		NetArgs: map[int][]string{
			0: {"-netdev", "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=41000,remote.type=inet,remote.host=127.0.0.1,remote.port=40999"},
			1: {"-netdev", "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=41001,remote.type=inet,remote.host=127.0.0.1,remote.port=40999"},
		}}
	p, err := Build(c, in)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	for _, format := range []string{"txt", "json"} {
		var b bytes.Buffer
		if format == "txt" {
			err = p.WriteText(&b)
		} else {
			err = p.WriteJSON(&b)
		}
		if err != nil {
			t.Fatal(err)
		}
		// Golden files must not depend on where the checkout lives.
		got := strings.ReplaceAll(b.String(), abs, "$TESTDATA")
		golden := filepath.Join("testdata", "lan.plan."+format)
		if *update {
			os.WriteFile(golden, []byte(got), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./core/plan -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("plan (%s) differs from %s; rerun with -update if the change is intended.\ngot:\n%s", format, golden, got)
		}
	}
}

func TestPlanIsPure(t *testing.T) {
	c := load(t, "testdata/lan.hcl")
	in := Inputs{StateDir: stateDir, Accel: "tcg"}
	a, _ := Build(c, in)
	b, _ := Build(c, in)
	var x, y bytes.Buffer
	a.WriteJSON(&x)
	b.WriteJSON(&y)
	if x.String() != y.String() {
		t.Error("two plans of the same inputs differ")
	}
}

func TestPlanErrors(t *testing.T) {
	c := load(t, "testdata/lan.hcl")
	cases := []struct {
		name string
		in   Inputs
		want string
	}{
		{"unresolved accel", Inputs{StateDir: stateDir, Accel: "auto"}, "not resolved"},
		{"no state dir", Inputs{Accel: "tcg"}, "no state directory"},
		{"socket path too long", Inputs{StateDir: "/" + strings.Repeat("x", 100), Accel: "tcg"}, "more than a unix socket allows"},
		{"plugin attaches its own NIC", Inputs{StateDir: stateDir, Accel: "tcg", NetArgs: map[int][]string{0: {"-netdev", "dgram,id=net0", "-device", "e1000,netdev=net0"}}}, "guest 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(c, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestFactsMatchPlan(t *testing.T) {
	c := load(t, "testdata/lan.hcl")
	p, err := Build(c, Inputs{StateDir: stateDir, Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	f := FactsIn(c, stateDir)
	for i, g := range p.Guests {
		in := f.Instances[i]
		if in.Name != g.Name || in.MAC != g.MAC || in.InputQMPSocket != g.InputQMPSocket || in.VNC != g.VNC {
			t.Errorf("guest %d: facts %+v disagree with plan %+v", i, in, g)
		}
	}
}

// BenchmarkPlan1000 plans a 1,000-guest cluster.
func BenchmarkPlan1000(b *testing.B) {
	c := load(b, "testdata/lan.hcl")
	c.Instances = 1000
	in := Inputs{StateDir: "/s", Accel: "tcg", NetArgs: map[int][]string{}}
	for i := 0; i < 1000; i++ {
		in.NetArgs[i] = []string{"-netdev", "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=41000,remote.type=inet,remote.host=127.0.0.1,remote.port=40999"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(c, in); err != nil {
			b.Fatal(err)
		}
	}
}
