package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/locolan/loco/internal/testenv"
)

// TestValidateExampleConfigs: the shipped examples validate.
func TestValidateExampleConfigs(t *testing.T) {
	e := newE2E(t)
	root := testenv.RepoRoot()
	disk := filepath.Join(e.Dir, "win98.qcow2")
	os.WriteFile(disk, nil, 0o644)
	for _, args := range [][]string{
		{"validate", filepath.Join(root, "configs", "demo.hcl")},
		{"validate", "--var", "win98_disk=" + disk, filepath.Join(root, "configs", "lego-loco.hcl")},
	} {
		if out, errOut, code := e.Run(args...); code != 0 || !strings.Contains(out, "is valid") {
			t.Errorf("loco %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// Without the disk variable, the message says how to set it.
	_, errOut, code := e.Run("validate", filepath.Join(root, "configs", "lego-loco.hcl"))
	if code != 1 || !strings.Contains(errOut, "-var win98_disk=VALUE") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

// buildDocPlugin compiles the plugin and the test shown in
// docs/plugin-authoring.md, runs that test, and returns a directory holding
// the binary as loco-plugin-network-mcast.
func buildDocPlugin(t testing.TB) string {
	t.Helper()
	root := testenv.RepoRoot()
	doc, err := os.ReadFile(filepath.Join(root, "docs", "plugin-authoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 2 {
		t.Fatalf("docs/plugin-authoring.md has %d Go blocks, want the plugin and its test", len(blocks))
	}
	plugin, test := blocks[0][1], blocks[1][1]
	if n := strings.Count(plugin, "\n"); n >= 100 {
		t.Errorf("the minimal plugin is %d lines, the guide promises under 100", n)
	}
	// A module of its own that requires only the sdk module, as an outside
	// plugin is, pointed at this checkout's sdk.
	src := filepath.Join(root, "build", "doccheck", "mcast")
	os.RemoveAll(src)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	os.WriteFile(filepath.Join(src, "main.go"), []byte(plugin), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/mcast\n\ngo 1.26.0\n\n"+
		"require github.com/locolan/loco/sdk v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/locolan/loco/sdk => "+filepath.Join(root, "sdk")+"\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main_test.go"), []byte("package main\n\nimport (\n\t\"testing\"\n\n\t\"github.com/locolan/loco/sdk\"\n\t\"github.com/locolan/loco/sdk/sdktest\"\n)\n\n"+test), 0o644)
	bin := testenv.ShortTempDir(t)
	for _, args := range [][]string{
		{"mod", "tidy"}, // adds cty, which the example imports itself
		{"test", "-count=1", "."},
		{"build", "-o", filepath.Join(bin, "loco-plugin-network-mcast"), "."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	return bin
}

// TestValidatePluginBlocks: loco validate starts the plugins a spec names
// and reports mistakes in their blocks at the user's line and column.
func TestValidatePluginBlocks(t *testing.T) {
	e := newE2E(t)
	pluginDir := buildDocPlugin(t)
	os.Setenv("LOCO_PLUGIN_PATH", pluginDir)
	t.Cleanup(func() { os.Unsetenv("LOCO_PLUGIN_PATH") })

	good := e.Spec("docs", 2, "  network \"mcast\" {\n    port = 12345\n  }\n")
	if out, errOut, code := e.Run("validate", good); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	out := e.MustRun("plan", good)
	if !strings.Contains(out, "socket,id=net0,mcast=230.0.0.1:12345,localaddr=127.0.0.1") || !strings.Contains(out, "-device e1000,netdev=net0,mac=") {
		t.Errorf("plan lacks the plugin's netdev or the NIC:\n%s", out)
	}

	// The spec's lines: 1 cluster, 2 instances, 3-8 image, 9-12 guest,
	// 13-15 runtime, 16-18 api, then the body under test from line 19.
	cases := []struct {
		name, body, want string
	}{
		{"syntax error", "  network \"mcast\" {\n    port = = 1\n  }\n", `:20:12: error: Invalid expression`},
		{"unknown core attribute", "  colour = \"red\"\n", `:19:3: error: Unsupported argument`},
		{"wrong type in plugin block", "  network \"mcast\" {\n    port = \"high\"\n  }\n", `:20:12: error: Incorrect attribute value type: Inappropriate value for attribute "port": a number is required`},
		{"missing required plugin attribute", "  network \"mcast\" {\n  }\n", `:19:19: error: Missing required argument: The argument "port" is required`},
		{"value the plugin rejects", "  network \"mcast\" {\n    port = 80\n  }\n", `:20:5: error: Port out of range: 80: use 1024-65535`},
		{"unknown plugin", "  network \"sockit\" {\n  }\n", `:19:3: error: Unknown plugin: no network plugin named "sockit"`},
		{"undefined variable", "  network \"mcast\" {\n    port = var.port\n  }\n", `:20:12: error: Undefined variable: There is no variable named "port"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := e.Spec("bad", 1, tc.body)
			_, errOut, code := e.Run("validate", path)
			if code != 1 || !strings.Contains(errOut, path+tc.want) {
				t.Errorf("exit %d; want %q in stderr:\n%s", code, path+tc.want, errOut)
			}
		})
	}
	t.Run("unknown plugin lists the plugins found", func(t *testing.T) {
		_, errOut, _ := e.Run("validate", e.Spec("bad", 1, "  network \"sockit\" {\n  }\n"))
		// The plugins built next to loco are found too.
		if !regexp.MustCompile(`Plugins found: .*network "mcast"`).MatchString(errOut) {
			t.Errorf("stderr:\n%s", errOut)
		}
	})
	t.Run("plugins command", func(t *testing.T) {
		out := e.MustRun("plugins")
		if !regexp.MustCompile(`network\s+mcast\s+1\.0\.0\s+1\s+\S+loco-plugin-network-mcast\s+ok`).MatchString(out) {
			t.Errorf("loco plugins:\n%s", out)
		}
	})
}

// TestValidateCatchesWhatRunWouldHit: mistakes that plan or run used to
// hit later, without a position (QEMU's or net.Listen's words at start),
// are validate's errors at the attribute's file:line:col. And plan, which
// promises to write nothing, leaves no state directory behind (it used to
// create <state_dir>/lan).
func TestValidateCatchesWhatRunWouldHit(t *testing.T) {
	e := newE2E(t)
	// The spec's lines: 1 cluster, 2 instances, 3-8 image, 9-12 guest
	// (memory on 10), 13-15 runtime, 16-18 api (listen on 17), then the
	// extra body from line 19.
	cases := []struct {
		name, edit, extra, want string
	}{
		{"memory the host cannot give", "memory = 999999999999", "", `:10:5: error: More memory than the host has`},
		{"port out of range", `listen = "0.0.0.0:99999"`, "", `:17:5: error: Invalid port`},
		{"comma in state_dir", "", "  state_dir = \"/tmp/a,b\"\n", `:19:3: error: Path QEMU cannot take`},
		{"QEMU options in the machine type", "memory = 128\n    machine = \"pc,accel=kvm\"", "", `:11:5: error: Invalid machine type`},
		{"machine type QEMU does not have", "memory = 128\n    machine = \"pc-i440fx-0.1\"", "", `:11:5: error: Unknown machine type`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := e.Spec("bad", 1, tc.extra)
			src := string(must(os.ReadFile(path)))
			if strings.HasPrefix(tc.edit, "listen") {
				src = strings.Replace(src, `listen = "127.0.0.1:0"`, tc.edit, 1)
			} else if tc.edit != "" {
				src = strings.Replace(src, "memory = 128", tc.edit, 1)
			}
			os.WriteFile(path, []byte(src), 0o644)
			for _, cmd := range []string{"validate", "plan"} {
				_, errOut, code := e.Run(cmd, path)
				if code != 1 || !strings.Contains(errOut, path+tc.want) {
					t.Errorf("loco %s: exit %d; want %q in stderr:\n%s", cmd, code, path+tc.want, errOut)
				}
			}
		})
	}

	t.Run("plan writes nothing", func(t *testing.T) {
		dir := filepath.Join(e.Dir, "fresh-state")
		path := e.Spec("lan", 2, fmt.Sprintf("  state_dir = %q\n  network \"socket\" {}\n", dir))
		out := e.MustRun("plan", path)
		if !strings.Contains(out, filepath.Join(dir, "lan")) {
			t.Errorf("the plan does not show the LAN's sockets under the state directory %s:\n%s", dir, out)
		}
		if strings.Contains(out, "loco-plan-") {
			t.Errorf("the plan shows the plugins' scratch directory:\n%s", out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(dir)
			t.Errorf("plan created the state directory %s (%v): %v", dir, err, entries)
		}
	})
}
