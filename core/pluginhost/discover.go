package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/locolan/loco/sdk"
)

// BinaryPrefix starts every plugin binary's name: loco-plugin-<kind>-<name>.
const BinaryPrefix = "loco-plugin-"

// Candidate is a file discovery looked at.
type Candidate struct {
	Kind, Name string
	Path       string
	// Skipped says why the candidate is not used; "" when it is.
	Skipped string
}

// ID is "<kind>-<name>", the name a plugin pin uses.
func (c Candidate) ID() string { return c.Kind + "-" + c.Name }

// SearchDirs is where plugins are looked for, first match wins:
// $LOCO_PLUGIN_PATH (colon-separated), the directory of the loco binary,
// then ~/.local/share/loco/plugins.
func SearchDirs() []string {
	var dirs []string
	if p := os.Getenv("LOCO_PLUGIN_PATH"); p != "" {
		for _, d := range filepath.SplitList(p) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local", "share", "loco", "plugins"))
	}
	return dirs
}

// Discover lists every plugin-looking file in dirs. Usable candidates come
// first, sorted by kind and name; skipped ones say why.
func Discover(dirs []string) []Candidate {
	var out []Candidate
	seen := map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // a search directory that does not exist is normal
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), BinaryPrefix) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			c := Candidate{Path: path}
			kind, name, ok := strings.Cut(strings.TrimPrefix(e.Name(), BinaryPrefix), "-")
			c.Kind, c.Name = kind, name
			switch {
			case !ok || name == "":
				c.Skipped = "name is not loco-plugin-<kind>-<name>"
			case !knownKind(kind):
				c.Skipped = fmt.Sprintf("unknown kind %q (kinds: %s)", kind, strings.Join(sdk.Kinds, ", "))
			default:
				if first, dup := seen[c.ID()]; dup {
					c.Skipped = "shadowed by " + first
				} else if st, err := os.Stat(path); err != nil {
					c.Skipped = err.Error()
				} else if st.IsDir() {
					c.Skipped = "is a directory"
				} else if st.Mode()&0o111 == 0 {
					c.Skipped = "not executable"
				} else {
					seen[c.ID()] = path
				}
			}
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Skipped == "") != (out[j].Skipped == "") {
			return out[i].Skipped == ""
		}
		return out[i].ID() < out[j].ID()
	})
	return out
}

// Find returns the usable candidate for kind and name.
func Find(cands []Candidate, kind, name string) (Candidate, bool) {
	for _, c := range cands {
		if c.Skipped == "" && c.Kind == kind && c.Name == name {
			return c, true
		}
	}
	return Candidate{}, false
}

func knownKind(k string) bool {
	for _, x := range sdk.Kinds {
		if x == k {
			return true
		}
	}
	return false
}
