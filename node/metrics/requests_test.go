package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
)

func do(t *testing.T, method, url, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// apiCount is how many requests the histogram holds for the labels.
func apiCount(t *testing.T, f families, method, route, code string) uint64 {
	t.Helper()
	m, ok := f.find("dropmesh_api_request_duration_seconds", L("method", method, "route", route, "code", code))
	if !ok {
		return 0
	}
	return m.Histogram.GetSampleCount()
}

func TestInstrumentAPILabelsByRouteTemplate(t *testing.T) {
	fake := apitest.NewFake("n1")
	m := newTestMetrics(t, nil, "n1")
	opts := api.Options{Controller: fake, APIKey: "k"}
	h, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.InstrumentAPI(h, api.RoutePatterns(opts)))
	t.Cleanup(srv.Close)

	calls := []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/ping", "", 200},
		{"GET", "/v1/nodes", "k", 200},
		{"GET", "/v1/nodes", "k", 200},
		{"GET", "/v1/nodes", "wrong", 401},
		{"GET", "/v1/services/ws1/shop/prod/web", "k", 404},
		{"GET", "/v1/services/ws2/blog/dev/api", "k", 404},
		{"GET", "/v1/no/such/route/" + strings.Repeat("x", 50), "k", 404},
		{"BREW", "/v1/nodes", "k", 405},
	}
	for _, c := range calls {
		if got := do(t, c.method, srv.URL+c.path, c.key); got != c.want {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	srvM := httptest.NewServer(m.Handler())
	t.Cleanup(srvM.Close)
	f := scrapeURL(t, srvM.URL, "")
	for _, c := range []struct {
		method, route, code string
		want                uint64
	}{
		{"GET", "/ping", "200", 1},
		{"GET", "/v1/nodes", "200", 2},
		{"GET", "/v1/nodes", "401", 1},
		{"GET", "/v1/services/{ws}/{project}/{env}/{service}", "404", 2},
		{"GET", "unmatched", "404", 1},
		{"other", "unmatched", "405", 1},
	} {
		if got := apiCount(t, f, c.method, c.route, c.code); got != c.want {
			t.Errorf("api{%s %s %s} = %d, want %d", c.method, c.route, c.code, got, c.want)
		}
	}
	// No raw path ever becomes a label.
	for _, r := range f.labelValues("dropmesh_api_request_duration_seconds", "route") {
		if strings.Contains(r, "ws1") || strings.Contains(r, "xxxx") {
			t.Errorf("raw path %q became a route label", r)
		}
	}
}

func TestRouteMatcherPrefersLiteralSegments(t *testing.T) {
	mt := newRouteMatcher([]string{
		"GET /v1/nodes/{id}",
		"GET /v1/nodes/stats",
		"POST /v1/nodes/{id}/reboot",
		"GET /v1/{kind}/x",
		"not a pattern",
	})
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1/nodes/stats", "/v1/nodes/stats"},
		{"GET", "/v1/nodes/n-1", "/v1/nodes/{id}"},
		{"GET", "/v1/nodes/x", "/v1/nodes/{id}"},
		{"POST", "/v1/nodes/n-1/reboot", "/v1/nodes/{id}/reboot"},
		{"GET", "/v1/nodes/n-1/reboot", "unmatched"},
		{"GET", "/v1/nodes/", "unmatched"},
		{"GET", "/v1/nodes", "unmatched"},
		{"GET", "/v1/things/x", "/v1/{kind}/x"},
		{"GET", "/" + strings.Repeat("a/", 200), "unmatched"},
		{"GET", "", "unmatched"},
	} {
		if got := mt.match(c.method, c.path); got != c.want {
			t.Errorf("match(%s %q) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// Streaming handlers keep working through the wrapper: the client sees the
// first chunk before the handler returns.
func TestInstrumentAPIKeepsFlush(t *testing.T) {
	m := newTestMetrics(t, nil, "n1")
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the wrapper: %v", err)
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "second\n")
	})
	srv := httptest.NewServer(m.InstrumentAPI(h, []string{"GET /v1/containers/{name}/logs"}))
	t.Cleanup(srv.Close)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.URL + "/v1/containers/web/logs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("first chunk = %q, %v; want it before the handler returns", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second\n" {
		t.Fatalf("rest = %q", rest)
	}
	f := scrapeHandler(t, m.Handler())
	if got := apiCount(t, f, "GET", "/v1/containers/{name}/logs", "200"); got != 1 {
		t.Errorf("stream counted %d, want 1", got)
	}
}
