// Package web is loco's browser dashboard: plain ES modules and CSS embedded
// in the binary, no build step. The API serves it behind its token (see
// core/api); this package only renders the page and serves the files.
package web

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
)

//go:embed static
var files embed.FS

// static is the dashboard's files at their URL paths under /ui/.
var static, _ = fs.Sub(files, "static")

// Static serves the dashboard's files under /ui/.
func Static() http.Handler {
	fsrv := http.StripPrefix("/ui/", http.FileServer(http.FS(static)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		securityHeaders(w, "")
		// The files change with the binary; revalidate rather than cache stale code.
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

// page is filled with fmt, not html/template: html/template does not know
// <script type="importmap"> and would HTML-escape the JSON in it. The JSON
// comes from encoding/json, which escapes <, > and &, so it cannot end the
// script element; the attributes are escaped with html.EscapeString.
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loco</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="%s">
<script type="importmap" nonce="%s">%s</script>
<script type="module" src="%s"></script>
</head>
<body>
<noscript>The loco dashboard needs JavaScript.</noscript>
</body>
</html>
`

// Index renders the dashboard's page. The API wants its token on every
// request, and a browser cannot add a header to the requests it makes for
// <script> and import statements. So the page maps every module URL to the
// same URL with ?token= in an import map: the modules import each other by
// plain relative paths, and each fetch still carries the token.
func Index(token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := "?token=" + url.QueryEscape(token)
		imports := map[string]string{}
		var names []string
		fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && path.Ext(p) == ".js" {
				names = append(names, p)
			}
			return nil
		})
		sort.Strings(names)
		for _, n := range names {
			imports["/ui/"+n] = "/ui/" + n + q
		}
		for _, n := range noVNCModules() {
			imports["/ui/novnc/"+n] = "/ui/novnc/" + n + q
		}
		im, _ := json.Marshal(map[string]any{"imports": imports})
		raw := make([]byte, 16)
		rand.Read(raw)
		nonce := base64.StdEncoding.EncodeToString(raw)
		e := html.EscapeString
		body := fmt.Sprintf(page, e("/ui/style.css"+q), e(nonce), im, e("/ui/app.js"+q))
		securityHeaders(w, nonce)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, body)
	})
}

// securityHeaders: the page carries the API token, so it runs only its own
// code, is not framed, and leaks no URL (with the token) as a referrer.
func securityHeaders(w http.ResponseWriter, nonce string) {
	script := "'self'"
	if nonce != "" {
		script += " 'nonce-" + nonce + "'"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src "+script+
		"; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}
