package web

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// NoVNCDir is where Debian's novnc package keeps noVNC's ES modules. The
// dashboard plays an RFB endpoint with them, served from disk by loco, so
// it works offline and follows the distribution's security updates.
const NoVNCDir = "/usr/share/novnc"

// noVNCFiles is the part of noVNC the dashboard imports: the RFB client
// and what it imports (core/, vendor/pako). Its apps and HTML pages are not
// served.
func noVNCFiles() fs.FS { return os.DirFS(NoVNCDir) }

func noVNCServed(p string) bool {
	return (strings.HasPrefix(p, "core/") || strings.HasPrefix(p, "vendor/")) && path.Ext(p) == ".js"
}

// noVNCModules lists noVNC's modules for the page's import map, so each
// import carries the token like the dashboard's own. None when the package
// is missing: an RFB tile then says what to install.
func noVNCModules() []string {
	var names []string
	fs.WalkDir(noVNCFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && noVNCServed(p) {
			names = append(names, p)
		}
		return nil
	})
	return names
}

// NoVNC serves noVNC's modules under /ui/novnc/.
func NoVNC() http.Handler {
	fsrv := http.StripPrefix("/ui/novnc/", http.FileServer(http.FS(noVNCFiles())))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/ui/novnc/")
		if !noVNCServed(p) || strings.Contains(p, "..") {
			http.Error(w, "not part of noVNC's client", http.StatusNotFound)
			return
		}
		if _, err := fs.Stat(noVNCFiles(), p); err != nil {
			http.Error(w, "noVNC is not installed: apt-get install novnc", http.StatusNotFound)
			return
		}
		securityHeaders(w, "")
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}
