package http

import (
	"embed"
	"net/http"
	"path"
	"slices"

	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/docs"
)

//go:embed assets
var assetFS embed.FS

// assets serves the pages' static files (GET /assets/{name}).
func (s *Server) assets(w http.ResponseWriter, r *http.Request) {
	data, err := assetFS.ReadFile("assets/" + path.Base(r.PathValue("name")))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(data)
}

// homeData is the landing page's.
type homeData struct {
	pageData
	Docs      []docs.Page
	Scenarios []string
	Cities    []bureau.City
}

// home is GET /: what this server is, with links to the API reference, the sandbox's test
// persons and the operational endpoints.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	d := &homeData{pageData: pageData{Title: "medpay"}, Docs: docs.APIPages()}
	if s.cfg.Sandbox {
		d.Scenarios = bureau.Scenarios()
		d.Cities = bureau.Cities()
	}
	d.Sandbox = s.cfg.Sandbox
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Frame-Options", "DENY")
	if err := pages.ExecuteTemplate(w, "home.html", d); err != nil {
		s.logger.Error("render", "page", "home", "err", err)
	}
}

// apiDoc serves a page of the API reference as it is in the repository (Markdown, UTF-8).
func (s *Server) apiDoc(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	i := slices.IndexFunc(docs.APIPages(), func(p docs.Page) bool { return p.File == name })
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Write(docs.APIPages()[i].Text)
}
