package metrics

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
)

func TestEverySeriesCarriesTheNodeLabel(t *testing.T) {
	src := newFakeSource()
	src.set(func(f *fakeSource) { f.stats = map[string]string{"state": "Leader", "term": "2"} })
	m := New(src, "node-7") // the default config, runtime collectors included
	f := scrapeHandler(t, m.Handler())
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("the default config has no Go runtime metrics")
	}
	for name, fam := range f {
		for _, mt := range fam.GetMetric() {
			node := ""
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "node" {
					node = lp.GetValue()
				}
			}
			if node != "node-7" {
				t.Errorf("%s has node=%q, want node-7", name, node)
			}
		}
	}
}

// Several agents in one process each have their own registry.
func TestTwoAgentsInOneProcess(t *testing.T) {
	a, b := New(newFakeSource(), "a"), New(newFakeSource(), "b")
	a.ObserveHeal("restart")
	a.ObserveHeal("restart")
	b.ObserveHeal("restart")
	fa, fb := scrapeHandler(t, a.Handler()), scrapeHandler(t, b.Handler())
	if got := fa.value(t, "dropmesh_heal_actions_total", L("kind", "restart", "node", "a")); got != 2 {
		t.Errorf("agent a restarts = %v, want 2", got)
	}
	if got := fb.value(t, "dropmesh_heal_actions_total", L("kind", "restart", "node", "b")); got != 1 {
		t.Errorf("agent b restarts = %v, want 1", got)
	}
	if _, ok := fa.find("dropmesh_heal_actions_total", L("node", "b")); ok {
		t.Error("agent a's scrape shows agent b's series")
	}
	// Nothing went to the global registry.
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), Namespace+"_") {
			t.Errorf("%s is registered globally", mf.GetName())
		}
	}
}

func TestBadNodeIDIsSanitised(t *testing.T) {
	m := New(nil, "bad\xffid"+strings.Repeat("x", 300))
	f := scrapeHandler(t, m.Handler())
	vals := f.labelValues("dropmesh_heal_actions_total", "node")
	if len(vals) == 0 {
		t.Fatal("no series")
	}
	if len(vals[0]) > maxNodeIDLen || !strings.HasPrefix(vals[0], "bad\uFFFDid") {
		t.Errorf("node label %q: want the valid prefix, at most %d bytes", vals[0], maxNodeIDLen)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(c *Config){
		"empty buckets":      func(c *Config) { c.CommitBuckets = nil },
		"not increasing":     func(c *Config) { c.APIBuckets = []float64{0.1, 0.1} },
		"decreasing":         func(c *Config) { c.ReconcileBuckets = []float64{1, 0.5} },
		"zero bucket":        func(c *Config) { c.ApplyBuckets = []float64{0, 1} },
		"NaN bucket":         func(c *Config) { c.ProbeRTTBuckets = []float64{math.NaN()} },
		"infinite bucket":    func(c *Config) { c.ProbeRTTBuckets = []float64{1, math.Inf(1)} },
		"negative in flight": func(c *Config) { c.MaxScrapesInFlight = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			m, err := NewWithConfig(nil, "n", c)
			if !errors.Is(err, ErrInvalidConfig) || m != nil {
				t.Fatalf("NewWithConfig = %v, %v; want ErrInvalidConfig", m, err)
			}
		})
	}
	if _, err := NewWithConfig(nil, "n", DefaultConfig()); err != nil {
		t.Fatalf("DefaultConfig refused: %v", err)
	}
}

// The route serves the metrics through the real API: the key is required,
// and the API's own requests are measured by route.
func TestRouteBehindTheAPIKey(t *testing.T) {
	fake := apitest.NewFake("n1")
	m := newTestMetrics(t, fakeView{fake}, "n1")
	opts := api.Options{Controller: fake, APIKey: "k3y"}
	h, err := api.NewMeasured(opts, m)
	if err != nil {
		t.Fatalf("api.NewMeasured: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a key: %s, want 401", resp.Status)
	}
	scrapeURL(t, srv.URL+Path, "k3y")
	f := scrapeURL(t, srv.URL+Path, "k3y")
	if got, _ := f.histogram(t, "dropmesh_api_request_duration_seconds", L("method", "GET", "route", "/metrics", "code", "401")); got != 1 {
		t.Errorf("401 scrapes counted %d, want 1", got)
	}
	if got, _ := f.histogram(t, "dropmesh_api_request_duration_seconds", L("method", "GET", "route", "/metrics", "code", "200")); got != 1 {
		t.Errorf("earlier 200 scrapes counted %d, want 1 (this one is still running)", got)
	}
	if _, ok := f["dropmesh_containers"]; !ok {
		t.Error("the scrape through the API lacks the state figures")
	}

	// The route is in the OpenAPI document like any other.
	found := false
	req := httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer k3y")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	found = rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `"`+Path+`"`)
	if !found {
		t.Errorf("the OpenAPI document does not list GET /metrics: %d", rec.Code)
	}
	if api.MetricsPath != Path {
		t.Errorf("the API serves the metrics at %s, the package says %s", api.MetricsPath, Path)
	}
}
