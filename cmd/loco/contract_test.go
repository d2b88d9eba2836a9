package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/locolan/loco"

// forbiddenImports are packages a plugin must not import directly: a
// plugin reports the kind of an error by wrapping one of the sdk's
// sentinels, and the sdk turns it into a gRPC status.
var forbiddenImports = []string{"google.golang.org/grpc/status", "google.golang.org/grpc/codes"}

// TestPluginsDependOnlyOnTheSDK guards the plugin contract: outside plugins
// copy the in-tree ones and can import nothing of loco but sdk/, so no
// non-test package under plugins/ may depend on another part of loco
// (core/, internal/, cmd/), directly or through another package, nor speak
// gRPC status codes itself. Every offender is listed.
func TestPluginsDependOnlyOnTheSDK(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./plugins/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list ./plugins/...: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list ./plugins/...: %v", err)
	}
	type listed struct {
		ImportPath    string
		Imports, Deps []string
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list's output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages under plugins/")
	}
	allowed := func(dep string) bool {
		for _, root := range []string{module + "/sdk", module + "/plugins"} {
			if dep == root || strings.HasPrefix(dep, root+"/") {
				return true
			}
		}
		return !strings.HasPrefix(dep, module+"/")
	}
	for _, p := range pkgs {
		// Deps is the transitive closure of the package's non-test imports.
		for _, dep := range p.Deps {
			if !allowed(dep) {
				t.Errorf("%s depends on %s: plugins may use only %s/sdk/...", p.ImportPath, dep, module)
			}
		}
		for _, imp := range forbiddenImports {
			if slices.Contains(p.Imports, imp) {
				t.Errorf("%s imports %s: wrap an sdk sentinel (sdk.ErrInvalid, sdk.ErrGuestNotRunning, ...) with %%w instead", p.ImportPath, imp)
			}
		}
	}
	t.Logf("checked %d packages under plugins/", len(pkgs))
}

// TestSDKModuleVersionsMatchTheTree keeps the sdk module honest: every
// module sdk/go.mod requires is the version the whole tree builds with, so
// the tests here run the sdk with the dependencies an outside plugin gets
// (and `make proto`'s protoc-gen-go, from the root's tool block, is the
// protobuf runtime's own version); and the sdk requires nothing of loco.
func TestSDKModuleVersionsMatchTheTree(t *testing.T) {
	run := func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, ee.Stderr)
			}
			t.Fatalf("go %s in %s: %v", strings.Join(args, " "), dir, err)
		}
		return out
	}
	var sdkMod struct {
		Module  struct{ Path string }
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(run("../../sdk", "mod", "edit", "-json"), &sdkMod); err != nil {
		t.Fatalf("decoding sdk/go.mod: %v", err)
	}
	if sdkMod.Module.Path != module+"/sdk" {
		t.Fatalf("sdk/go.mod is module %q, want %s/sdk", sdkMod.Module.Path, module)
	}
	paths := []string{}
	want := map[string]string{}
	for _, r := range sdkMod.Require {
		if r.Path == module || strings.HasPrefix(r.Path, module+"/") {
			t.Errorf("sdk/go.mod requires %s: the sdk must not depend on the rest of loco", r.Path)
			continue
		}
		paths = append(paths, r.Path)
		want[r.Path] = r.Version
	}
	dec := json.NewDecoder(bytes.NewReader(run("../..", append([]string{"list", "-m", "-json"}, paths...)...)))
	for {
		var m struct{ Path, Version string }
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list -m: %v", err)
		}
		if m.Version != want[m.Path] {
			t.Errorf("%s: sdk/go.mod requires %s, the tree builds with %s: run `go get %s@%s` in sdk/ (or lower the root's)",
				m.Path, want[m.Path], m.Version, m.Path, m.Version)
		}
	}
}

// TestEveryPluginChecksItsInterface: every plugin under plugins/ asserts at
// compile time that it implements its kind's interface
// (var _ sdk.Network = (*plugin)(nil)), so a changed or misspelt method is
// a build error, not a plugin that silently answers UNIMPLEMENTED.
func TestEveryPluginChecksItsInterface(t *testing.T) {
	kinds := []string{"Network", "Stream", "Input", "Bench"}
	dirs, err := os.ReadDir("../../plugins")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		var found []string
		root := filepath.Join("../../plugins", d.Name())
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, spec := range g.Specs {
					v := spec.(*ast.ValueSpec)
					sel, ok := v.Type.(*ast.SelectorExpr)
					if !ok || len(v.Names) != 1 || v.Names[0].Name != "_" || len(v.Values) != 1 {
						continue
					}
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "sdk" && slices.Contains(kinds, sel.Sel.Name) {
						found = append(found, "sdk."+sel.Sel.Name)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("reading plugins/%s: %v", d.Name(), err)
		}
		if len(found) == 0 {
			t.Errorf("plugins/%s has no compile-time interface check: add var _ sdk.<Kind> = (*plugin)(nil), and one for each optional interface", d.Name())
		} else {
			t.Logf("plugins/%s checks %s", d.Name(), strings.Join(found, ", "))
		}
	}
	if n == 0 {
		t.Fatal("no plugins found under plugins/")
	}
}
