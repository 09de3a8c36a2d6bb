package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/raftfsm"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages lists every page template and the layout it renders in: "layout" has
// the navigation, "bare" is a centred card (sign-in, errors).
var pages = map[string]string{
	"overview":       "layout",
	"infrastructure": "layout",
	"services":       "layout",
	"service":        "layout",
	"snapshots":      "layout",
	"notifications":  "layout",
	"admin":          "layout",
	"setup":          "layout",
	"login":          "bare",
	"error":          "bare",
	"noleader":       "bare",
	"reload":         "bare",
}

// templates holds one parsed set per page: the layouts and partials plus
// that page's own file, which defines "main" (and optionally "title" and
// "static": markup outside the live region).
type templates struct {
	byPage map[string]*template.Template
}

func loadTemplates() (*templates, error) {
	base, err := template.New("").Funcs(templateFuncs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parse layout: %w", err)
	}
	t := &templates{byPage: map[string]*template.Template{}}
	for name := range pages {
		c, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("ui: clone layout: %w", err)
		}
		if _, err := c.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("ui: parse page %s: %w", name, err)
		}
		t.byPage[name] = c
	}
	return t, nil
}

// templateFuncs are the helpers the templates use.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"iso": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"ago":   ago,
		"bytes": humanBytes,
		"pct":   func(f float64) string { return fmt.Sprintf("%.0f%%", f) },
		"pct1":  func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
		"join":  strings.Join,
		"has":   slices.Contains[[]string],
		"add":   func(a, b int) int { return a + b },
		"list":  func(s ...string) []string { return s },
	}
}

// ago renders how long ago t was, coarsely ("just now", "5m ago", "3h ago").
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + coarse(-d)
	case d < 10*time.Second:
		return "just now"
	}
	return coarse(d) + " ago"
}

func coarse(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

// asset is one embedded static file.
type asset struct {
	body  []byte
	ctype string
	hash  string
}

// assetVersions are the static files with a content hash each, so their
// URLs change when they do and browsers may cache them for good.
type assetVersions map[string]asset

func hashAssets() (assetVersions, error) {
	out := assetVersions{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		out[strings.TrimPrefix(p, "static/")] = asset{body: body, ctype: ctype, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	return out, nil
}

// URL is the versioned address of a static file, for the templates.
func (a assetVersions) URL(name string) string {
	if f, ok := a[name]; ok {
		return "/static/" + name + "?v=" + f.hash
	}
	return "/static/" + name
}

func (s *server) static(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	f, ok := s.assets[name]
	if !ok {
		c.Status(http.StatusNotFound)
		return
	}
	s.serveAsset(c, f)
}

func (s *server) favicon(c *gin.Context) {
	if f, ok := s.assets["favicon.svg"]; ok {
		s.serveAsset(c, f)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *server) serveAsset(c *gin.Context, f asset) {
	h := c.Writer.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", `"`+f.hash+`"`)
	if c.Query("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if c.GetHeader("If-None-Match") == `"`+f.hash+`"` {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, f.ctype, f.body)
}

// flash is a one-time message shown after a redirect.
type flash struct {
	Kind string // ok | error
	Text string
}

// pageData is what every page template gets.
type pageData struct {
	Name  string
	Title string
	// URL is the page's own address (GET), which the script fetches the
	// main block from; after a refused form it differs from the POST's.
	URL     string
	User    *session
	CSRF    string
	Flash   *flash
	Alert   string
	Errors  map[string]string
	Cluster string
	NodeID  string
	Version string
	Local   bool
	// Poll asks the script to refresh the main block every Poll
	// milliseconds (for figures that do not come from the state).
	Poll     int
	LogLines int
	Assets   assetVersions
	Now      time.Time
	Data     any
	// Index is the raft index of the state the page shows: the script
	// compares it with the event stream's to catch changes made while the
	// page loaded.
	Index uint64
}

// Can reports whether the signed-in user's role allows a level ("admin",
// "deployer", "viewer"), so pages hide what the role cannot do.
func (p *pageData) Can(level string) bool { return p.User.can(raftfsm.Role(level)) }

// Err returns the error message of form id, if any.
func (p *pageData) Err(id string) string { return p.Errors[id] }

// newPage prepares the data common to every page.
func (s *server) newPage(c *gin.Context, name string) *pageData {
	p := &pageData{Name: name, Errors: map[string]string{}, NodeID: s.node.NodeID(), Version: s.node.Version(),
		Assets: s.assets, Now: s.now(), LogLines: s.cfg.LogLines, URL: canonicalURL(c.Request)}
	if sess := sessionOf(c); sess != nil {
		p.User = sess
		p.CSRF = s.sign.csrfToken(*sess)
	}
	s.node.View(func(st *raftfsm.State) {
		p.Cluster = st.Settings.ClusterName
		p.Local = st.Settings.LocalMode
		p.Index = st.Index
	})
	if !isFragment(c.Request) {
		p.Flash = s.takeFlash(c)
	}
	return p
}

// render writes a page (or only its main block for ?fragment=main). The
// template runs into a buffer first, so a template error is a clean error
// page, never half a page.
func (s *server) render(c *gin.Context, status int, p *pageData) {
	t, ok := s.tmpl.byPage[p.Name]
	if !ok {
		s.logger.Error("ui: no template", "page", p.Name)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	entry := pages[p.Name]
	if isFragment(c.Request) && entry == "layout" {
		entry = "main"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, p); err != nil {
		s.logger.Error("ui: render", "page", p.Name, "err", err)
		buf.Reset()
		status = http.StatusInternalServerError
		ep := &pageData{Name: "error", Title: "Something went wrong", Alert: "The page could not be drawn; the agent's log has the details.",
			Assets: s.assets, Now: s.now()}
		if err := s.tmpl.byPage["error"].ExecuteTemplate(&buf, "bare", ep); err != nil {
			c.String(status, "internal error")
			return
		}
	}
	c.Header("Cache-Control", "no-store")
	if p.Index > 0 {
		c.Header(indexHeader, strconv.FormatUint(p.Index, 10))
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// indexHeader carries the state index a page or fragment was drawn from.
const indexHeader = "X-Dropmesh-Index"

// renderError shows a stand-alone error page (or a short text to a
// fragment request, which the script shows in its banner).
func (s *server) renderError(c *gin.Context, status int, title, msg string) {
	c.Abort()
	if isBackground(c.Request) {
		c.Header("Cache-Control", "no-store")
		c.String(status, msg)
		return
	}
	p := &pageData{Name: "error", Title: title, Alert: msg, Assets: s.assets, Now: s.now(), User: sessionOf(c)}
	s.render(c, status, p)
}

// setFlash stores a message for the next page.
func (s *server) setFlash(c *gin.Context, kind, text string) {
	s.setCookie(c, flashCookie, url.QueryEscape(kind+"|"+text), "/", 60)
}

func (s *server) takeFlash(c *gin.Context) *flash {
	ck, err := c.Request.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	s.clearCookie(c, flashCookie, "/")
	v, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(v, "|")
	if !ok || (kind != "ok" && kind != "error") || len(text) > 500 {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

// redirectOK redirects after a successful form with a flash message.
func (s *server) redirectOK(c *gin.Context, to, msg string) {
	if msg != "" {
		s.setFlash(c, "ok", msg)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// reloadHeader on a fragment answer asks the script to reload the page.
const reloadHeader = "X-Dropmesh-Reload"

// isFragment reports a request for the main block only.
func isFragment(r *http.Request) bool { return r.URL.Query().Get("fragment") == "main" }

// isBackground reports a request the page's script makes (a fragment, an
// event or log stream), as opposed to a browser navigation.
func isBackground(r *http.Request) bool {
	return isFragment(r) || strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.Header.Get("X-Requested-With") != ""
}
