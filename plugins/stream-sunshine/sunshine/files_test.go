package sunshine

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/locolan/loco/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func demoPlans(n int) []guestPlan {
	var gs []guestPlan
	for i := 0; i < n; i++ {
		in := sdk.Instance{Index: uint32(i), Name: fmt.Sprintf("demo-%d", i), StateDir: fmt.Sprintf("/state/demo/guests/%d", i)}
		gs = append(gs, planFor(in, defaultBasePort, defaultDisplayBase))
	}
	return gs
}

// TestPortPlan: nine guests' displays and port families, and that no two
// families overlap.
func TestPortPlan(t *testing.T) {
	gs := demoPlans(9)
	golden(t, "portplan.txt", portPlan(gs))
	for i := 1; i < len(gs); i++ {
		if gs[i].ports()[0] <= gs[i-1].ports()[1] {
			t.Errorf("%s's ports %v overlap %s's %v", gs[i].Name, gs[i].ports(), gs[i-1].Name, gs[i-1].ports())
		}
		if gs[i].Display == gs[i-1].Display {
			t.Errorf("two guests on display %s", gs[i].Display)
		}
	}
}

// TestConfigs: each instance's sunshine.conf and apps.json.
func TestConfigs(t *testing.T) {
	for _, g := range demoPlans(2) {
		golden(t, g.Name+".sunshine.conf", renderConf(g))
		golden(t, g.Name+".apps.json", renderApps(g))
	}
}

// TestFilesKeepTheHostIdentity: the certificate and API credentials are
// made once and kept (paired clients trust that certificate); the
// configuration is rewritten.
func TestFilesKeepTheHostIdentity(t *testing.T) {
	g := planFor(sdk.Instance{Name: "k-0", StateDir: t.TempDir()}, defaultBasePort, defaultDisplayBase)
	u1, p1, err := writeFiles(g)
	if err != nil {
		t.Fatal(err)
	}
	cert1, _ := os.ReadFile(g.cert())
	os.WriteFile(g.conf(), []byte("junk"), 0o600)
	u2, p2, err := writeFiles(g)
	if err != nil {
		t.Fatal(err)
	}
	cert2, _ := os.ReadFile(g.cert())
	conf, _ := os.ReadFile(g.conf())
	if u1 != u2 || p1 != p2 || string(cert1) != string(cert2) || len(p1) < 20 {
		t.Errorf("identity changed: %s:%s -> %s:%s, cert equal %v", u1, p1, u2, p2, string(cert1) == string(cert2))
	}
	if string(conf) != renderConf(g) {
		t.Errorf("sunshine.conf not rewritten: %q", conf)
	}
	for _, f := range []string{g.key(), g.creds(), g.conf()} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
}
