package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// fakeSource is an in-test Source whose figures the test sets.
type fakeSource struct {
	mu      sync.Mutex
	stats   map[string]string
	members []mesh.Member
	score   int
	state   *raftfsm.State
}

func newFakeSource() *fakeSource { return &fakeSource{state: raftfsm.NewState()} }

func (f *fakeSource) RaftStats() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stats == nil {
		return nil
	}
	out := make(map[string]string, len(f.stats))
	for k, v := range f.stats {
		out[k] = v
	}
	return out
}

func (f *fakeSource) Members() []mesh.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.members == nil {
		return nil
	}
	return append([]mesh.Member{}, f.members...)
}

func (f *fakeSource) GossipHealthScore() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.score
}

func (f *fakeSource) View(fn func(s *raftfsm.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.state)
}

func (f *fakeSource) set(fn func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// testConfig is DefaultConfig without the runtime collectors.
func testConfig() Config {
	c := DefaultConfig()
	c.RuntimeMetrics = false
	return c
}

func newTestMetrics(t testing.TB, src Source, nodeID string) *Metrics {
	t.Helper()
	m, err := NewWithConfig(src, nodeID, testConfig())
	if err != nil {
		t.Fatalf("NewWithConfig: %v", err)
	}
	return m
}

// families are the parsed metric families of one scrape.
type families map[string]*dto.MetricFamily

// scrapeHandler serves h on a real 127.0.0.1 socket and scrapes it once.
func scrapeHandler(t testing.TB, h http.Handler) families {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return scrapeURL(t, srv.URL+Path, "")
}

// scrapeURL GETs url (with the bearer key if given) and parses the text format.
func scrapeURL(t testing.TB, url, key string) families {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape of %s: %v", url, err)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func (f families) find(name string, want map[string]string) (*dto.Metric, bool) {
	fam, ok := f[name]
	if !ok {
		return nil, false
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
				break
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

// value is the gauge or counter value of the metric; the test fails when
// it is absent.
func (f families) value(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := f.find(name, labels)
	if !ok {
		t.Fatalf("no %s%v in the scrape", name, labels)
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v is neither a gauge nor a counter", name, labels)
	return 0
}

// histogram is the sample count and sum of a histogram metric.
func (f families) histogram(t testing.TB, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	m, ok := f.find(name, labels)
	if !ok {
		t.Fatalf("no %s%v in the scrape", name, labels)
	}
	if m.Histogram == nil {
		t.Fatalf("%s%v is not a histogram", name, labels)
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

// labelValues lists the values label takes in family name.
func (f families) labelValues(name, label string) []string {
	var out []string
	for _, m := range f[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}

// L builds a label set from pairs.
func L(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// fakeView is a Source over a controller's state only (no raft, no mesh).
type fakeView struct {
	c interface{ View(func(*raftfsm.State)) }
}

func (v fakeView) RaftStats() map[string]string   { return nil }
func (v fakeView) Members() []mesh.Member         { return nil }
func (v fakeView) GossipHealthScore() int         { return 0 }
func (v fakeView) View(fn func(s *raftfsm.State)) { v.c.View(fn) }
