package admin

import (
	"bytes"
	"embed"
	"html"
	"io/fs"
	"net/http"
)

// The dashboard is plain HTML, CSS and JavaScript, embedded as written: no
// build step. It reads everything through the JSON API.
//
//go:embed dashboard
var dashboardFiles embed.FS

// contentSecurityPolicy allows the page its own scripts, styles and API
// calls, and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardRoutes serves the page at / and its files under /assets/. They
// hold no broker data, so they need no token: the page asks for it.
func (a *Admin) dashboardRoutes(mux *http.ServeMux) {
	index, err := dashboardFiles.ReadFile("dashboard/index.html")
	if err != nil {
		panic("admin: dashboard/index.html not embedded: " + err.Error())
	}
	auth := "none"
	if a.opts.Token != "" {
		auth = "token"
	}
	index = bytes.Replace(index, []byte("{{AUTH}}"), []byte(auth), 1)
	// The node's name when clustered: the page asks for the Cluster panel
	// only then.
	index = bytes.Replace(index, []byte("{{NODE}}"), []byte(html.EscapeString(a.srv.NodeName())), 1)

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		w.Write(index)
	})

	assets, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic("admin: dashboard files: " + err.Error())
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))
	mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		files.ServeHTTP(w, r)
	}))
}
