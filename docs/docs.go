// Package docs embeds the API reference (docs/api) so that the server can hand it out, and the
// reader can get it from the platform itself.
package docs

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed api/*.md
var api embed.FS

// Page is one page of the API reference.
type Page struct {
	File  string // e.g. orders.md
	Title string // its first heading
	Text  []byte // Markdown
}

// APIPages returns the pages of the API reference, README.md first.
func APIPages() []Page {
	entries, _ := fs.ReadDir(api, "api")
	var out []Page
	for _, e := range entries {
		text, err := api.ReadFile("api/" + e.Name())
		if err != nil {
			continue
		}
		title, _, _ := strings.Cut(string(text), "\n")
		p := Page{File: e.Name(), Title: strings.TrimPrefix(title, "# "), Text: text}
		if e.Name() == "README.md" {
			out = append([]Page{p}, out...)
		} else {
			out = append(out, p)
		}
	}
	return out
}
