package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFull(t *testing.T) {
	l := NewLoader()
	l.Environ = []string{}
	c, diags := l.Load("testdata/full.hcl")
	if diags.HasErrors() {
		t.Fatalf("unexpected errors: %v", diags)
	}
	abs, _ := filepath.Abs("testdata")
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", c.Name, "lan"},
		{"instances", c.Instances, 3},
		{"state dir", c.StateDir, filepath.Join(abs, "state")},
		{"kernel", c.Image.Kernel, filepath.Join(abs, "vmlinuz")},
		{"min memory", c.Image.MinMemoryMiB, 96},
		{"nic from variable", c.Guest.NIC, "ne2k_pci"},
		{"default vga", c.Guest.VGA, "std"},
		{"accel", c.Guest.Accel, "tcg"},
		{"override memory", c.GuestFor(2).MemoryMiB, 256},
		{"override audio", c.GuestFor(2).Audio, "sb16"},
		{"override keeps nic", c.GuestFor(2).NIC, "ne2k_pci"},
		{"no override", c.GuestFor(1).MemoryMiB, 128},
		{"start_from override", c.GuestFor(2).StartFrom, "party"},
		{"no start_from", c.GuestFor(1).StartFrom, ""},
		{"grace", c.Runtime.StopGrace, 5 * time.Second},
		{"restart limit", c.Runtime.RestartLimit, 3},
		{"plugins", len(c.Plugins), 2},
		{"pin sha lower-cased", c.Pins["network-socket"].SHA256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
		{"api", c.API.Listen, "127.0.0.1:9999"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if p, ok := c.Plugin("network"); !ok || p.Binary() != "loco-plugin-network-socket" {
		t.Errorf("network plugin: %+v %v", p, ok)
	}
}

func TestVariablePrecedence(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		env  []string
		want int
	}{
		{"default", nil, nil, 3},
		{"env", nil, []string{"LOCO_VAR_guests=5"}, 5},
		{"flag beats env", map[string]string{"guests": "7"}, []string{"LOCO_VAR_guests=5"}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader()
			l.Vars, l.Environ = tc.vars, append([]string{}, tc.env...)
			c, diags := l.Load("testdata/full.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if c.Instances != tc.want {
				t.Errorf("instances = %d, want %d", c.Instances, tc.want)
			}
		})
	}
}

// TestErrors checks that each kind of bad input is rejected at the right
// place with a message a user can act on.
func TestErrors(t *testing.T) {
	const head = "cluster \"c\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n"
	cases := []struct {
		name    string
		src     string
		vars    map[string]string
		wantPos string // file:line:col prefix
		wantMsg string
	}{
		{"syntax error", head + "  instances = = 3\n}\n", nil, "bad.hcl:5:15", "Invalid expression"},
		{"unknown attribute", head + "  colour = \"red\"\n}\n", nil, "bad.hcl:5:3", "Unsupported argument"},
		{"wrong type", head + "  instances = \"many\"\n}\n", nil, "bad.hcl:5:16", "a number is required"},
		{"undefined variable", head + "  instances = var.count\n}\n", nil, "bad.hcl:5:15", `no variable named "count"`},
		{"unknown nic", head + "  guest {\n    nic = \"e2000\"\n  }\n}\n", nil, "bad.hcl:6:5", "choose one of e1000"},
		{"memory below image minimum", "cluster \"c\" {\n  image {\n    disk = \"base.qcow2\"\n    min_memory = 96\n  }\n  guest {\n    memory = 64\n  }\n}\n", nil, "bad.hcl:7:5", "needs at least 96 MiB"},
		{"missing base image", "cluster \"c\" {\n  image {\n    disk = \"nope.qcow2\"\n  }\n}\n", nil, "bad.hcl:3:5", "Image file not found"},
		{"parsec", head + "  stream \"parsec\" {}\n}\n", nil, "bad.hcl:5:3", "Parsec hosts only on Windows 8.1"},
		{"kubernetes without base volume", head + "  runtime \"kubernetes\" {}\n}\n", nil, "bad.hcl:5:", "needs base_volume"},
		{"bad kubernetes base volume", head + "  runtime \"kubernetes\" {\n    base_volume = \"s3:bucket\"\n  }\n}\n", nil, "bad.hcl:6:5", "pvc:NAME"},
		{"bad kubernetes namespace", head + "  runtime \"kubernetes\" {\n    base_volume = \"pvc:base\"\n    namespace = \"Loco_1\"\n  }\n}\n", nil, "bad.hcl:7:5", "Invalid Kubernetes namespace"},
		{"restart_limit on kubernetes", head + "  runtime \"kubernetes\" {\n    base_volume = \"pvc:base\"\n    restart_limit = 3\n  }\n}\n", nil, "bad.hcl:7:5", "kubelet restarts"},
		{"bad kvm", head + "  runtime \"kubernetes\" {\n    base_volume = \"pvc:base\"\n    kvm = \"yes\"\n  }\n}\n", nil, "bad.hcl:7:5", "device-plugin"},
		{"kubernetes attribute on containerd", head + "  runtime \"containerd\" {\n    kubeconfig = \"k\"\n  }\n}\n", nil, "bad.hcl:6:5", "attribute of runtime \"kubernetes\""},
		{"containerd attribute on process", head + "  runtime \"process\" {\n    namespace = \"x\"\n  }\n}\n", nil, "bad.hcl:6:5", "attribute of runtime \"containerd\""},
		{"relative containerd address", head + "  runtime \"containerd\" {\n    address = \"c.sock\"\n  }\n}\n", nil, "bad.hcl:6:5", "absolute path"},
		{"bad containerd namespace", head + "  runtime \"containerd\" {\n    namespace = \"a b\"\n  }\n}\n", nil, "bad.hcl:6:5", "Invalid containerd namespace"},
		{"unknown runtime", head + "  runtime \"docker\" {}\n}\n", nil, "bad.hcl:5:", "Unknown runtime"},
		{"instance out of range", head + "  instances = 2\n  instance \"5\" {\n    memory = 256\n  }\n}\n", nil, "bad.hcl:6:", "index from 0 to 1"},
		{"two network blocks", head + "  network \"a\" {}\n  network \"b\" {}\n}\n", nil, "bad.hcl:6:3", "More than one network block"},
		{"no cluster", "variable \"x\" {\n  default = 1\n}\n", nil, "bad.hcl:", "No cluster block"},
		{"variable without value", "variable \"x\" {}\ncluster \"c\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n  instances = var.x\n}\n", nil, "bad.hcl:1:1", "-var x=VALUE"},
		{"undeclared -var", head + "}\n", map[string]string{"y": "1"}, "", "declares no variable \"y\""},
		{"bad token", head + "  api {\n    token = \"short\"\n  }\n}\n", nil, "bad.hcl:6:5", "at least 16"},
		{"bad snapshot name", head + "  guest {\n    start_from = \"a b\"\n  }\n}\n", nil, "bad.hcl:6:5", "Invalid snapshot name"},
		{"bad bench threshold", head + "  bench {\n    thresholds = [\"boot_s < 30\", \"glass_p50_ms =< 60\"]\n  }\n}\n", nil, "bad.hcl:6:5", "METRIC OP NUMBER"},
		{"bad cluster name", "cluster \"Bad_Name\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n}\n", nil, "bad.hcl:1:9", "Invalid cluster name"},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile("bad.hcl", []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewLoader()
			l.Vars, l.Environ = tc.vars, []string{}
			c, diags := l.Load("bad.hcl")
			if !diags.HasErrors() || c != nil {
				t.Fatalf("expected an error, got cluster %+v, diags %v", c, diags)
			}
			var all []string
			found := false
			for _, d := range diags {
				s := FormatDiagnostic(d)
				all = append(all, s)
				if strings.HasPrefix(s, tc.wantPos) && strings.Contains(s, tc.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no diagnostic at %q containing %q; got:\n%s", tc.wantPos, tc.wantMsg, strings.Join(all, "\n"))
			}
		})
	}
}

func TestWriteDiagnosticsShowsSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.hcl")
	os.WriteFile(p, []byte("cluster \"c\" {\n  bogus = 1\n}\n"), 0o644)
	l := NewLoader()
	l.Environ = []string{}
	_, diags := l.Load(p)
	var b strings.Builder
	WriteDiagnostics(&b, l.Files(), diags)
	out := b.String()
	for _, want := range []string{p + ":2:3: error: Unsupported argument", "   2 |   bogus = 1", "|   ^"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestContainerdRuntime(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644)
	for _, tc := range []struct {
		body                     string
		address, ns, snapshotter string
	}{
		{"", DefaultContainerdAddress, DefaultContainerdNamespace, "overlayfs"},
		{"address = \"/tmp/c.sock\"\n namespace = \"lab-1\"\n snapshotter = \"native\"\n", "/tmp/c.sock", "lab-1", "native"},
	} {
		path := filepath.Join(dir, "c.hcl")
		src := "cluster \"c\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n  runtime \"containerd\" {\n" + tc.body + "}\n}\n"
		os.WriteFile(path, []byte(src), 0o644)
		l := NewLoader()
		l.Environ = []string{}
		c, diags := l.Load(path)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		r := c.Runtime
		if r.Driver != "containerd" || r.Address != tc.address || r.Namespace != tc.ns || r.Snapshotter != tc.snapshotter {
			t.Errorf("%q: %+v", tc.body, r)
		}
	}
}

func TestBenchThresholds(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.qcow2"), nil, 0o644)
	path := filepath.Join(dir, "c.hcl")
	os.WriteFile(path, []byte("cluster \"c\" {\n  image {\n    disk = \"base.qcow2\"\n  }\n  bench {\n    thresholds = [\"boot_s < 30\", \"glass_p50_ms <= 60\"]\n  }\n}\n"), 0o644)
	c, diags := NewLoader().Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(c.Bench.Thresholds) != 2 || c.Bench.Thresholds[1].Metric != "glass_p50_ms" || c.Bench.Thresholds[1].Value != 60 {
		t.Errorf("thresholds: %+v", c.Bench.Thresholds)
	}
}
