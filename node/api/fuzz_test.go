package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/api/apitest"
)

// FuzzServiceRoute sends random path segments to the service routes: no
// panic, no 500, and a refused request changes nothing.
func FuzzServiceRoute(f *testing.F) {
	for _, seed := range [][4]string{
		{"default", "shop", "prod", "web"}, {"d3fa01", "shop", "prod", "web"}, {"", "", "", ""},
		{"a;b", "}", "pr od", "wеb"}, {"..", "%2F", "a/b", "\x00"}, {strings.Repeat("a", 300), "x", "y", "z"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], uint8(0))
	}
	fake := apitest.NewFake("node-1")
	h := newHandler(f, fake, quietLogger) // the fuzz target may not log through f
	if _, err := fake.Deploy(f.Context(), controlDeploy(f, webSpec)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ws, project, env, service string, variant uint8) {
		suffixes := []string{"", "/restart", "/health"}
		methods := []string{http.MethodGet, http.MethodDelete, http.MethodPost, http.MethodGet}
		path := "/v1/services/" + url.PathEscape(ws) + "/" + url.PathEscape(project) + "/" + url.PathEscape(env) + "/" + url.PathEscape(service) +
			suffixes[int(variant)%len(suffixes)]
		method := methods[int(variant/3)%len(methods)]
		before, idx := fake.StateJSON(), fake.Index()
		req := httptest.NewRequest(method, "http://agent"+path, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && (fake.Index() != idx || fake.StateJSON() != before) {
			t.Fatalf("%s %s refused with %d but changed the state", method, path, rec.Code)
		}
	})
}

// FuzzDeployBody posts random bodies as specs: never a panic or a 500, and
// a refused one changes nothing.
func FuzzDeployBody(f *testing.F) {
	for _, seed := range []string{webSpec, "", "{}", "[]", "null", "project: shop\nenv: prod\nservice: web\nimage: redis:7\n",
		`{"project":"shop","env":"prod","service":"web","image":"redis:7","replicas":1e9}`, "---\n---\n", "a: [", "\xff\xfe",
		"project: shop\nservice: web\nimage: redis:7\nenv: {A: 1}\nenvironment: prod\n", "kind: cron\nschedule: '* * * *'\n"} {
		f.Add([]byte(seed))
	}
	fake := apitest.NewFake("node-1")
	h := newHandler(f, fake, quietLogger) // the fuzz target may not log through f
	f.Fuzz(func(t *testing.T, body []byte) {
		before, idx := fake.StateJSON(), fake.Index()
		req := httptest.NewRequest(http.MethodPost, "http://agent/v1/services", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && (fake.Index() != idx || fake.StateJSON() != before) {
			t.Fatalf("body %q refused with %d but changed the state", body, rec.Code)
		}
	})
}

// quietLogger discards the API's log: a fuzz target must not log through
// the *testing.F the handler was made with.
func quietLogger(o *Options) { o.Logger = slog.New(slog.DiscardHandler) }
