package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// BenchmarkScrape is one full scrape (gather and encode) of an agent with
// 50 gossip members and a state of 2000 instances, 200 of them on this node.
func BenchmarkScrape(b *testing.B) {
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		f.stats = map[string]string{"state": "Leader", "term": "9", "commit_index": "100000", "applied_index": "100000", "last_contact": "0"}
		for i := range 50 {
			f.members = append(f.members, mesh.Member{ID: fmt.Sprintf("n%d", i), Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Version: "1.0.0", Proto: 40}})
		}
		for i := range 2000 {
			node := fmt.Sprintf("n%d", i%10)
			f.state.Instances[fmt.Sprint(i)] = &raftfsm.Instance{ID: fmt.Sprint(i), Node: node, Phase: raftfsm.PhaseReady, Health: raftfsm.HealthHealthy}
		}
	})
	m := New(src, "n0")
	for _, s := range healthStatuses {
		m.ObserveHealth(s)
	}
	m.observeAPI("GET", "/v1/nodes", 200, time.Millisecond)
	req := httptest.NewRequest(http.MethodGet, Path, nil)
	var bytes int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("scrape: %d", w.Code)
		}
		bytes = w.Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/scrape")
	b.ReportMetric(float64(bytes), "bytes/scrape")
}

// BenchmarkObserve is the cost the agent pays per observation.
func BenchmarkObserve(b *testing.B) {
	m := newTestMetrics(b, nil, "n0")
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveHealth(raftfsm.HealthHealthy)
		m.ObserveCommit(3 * time.Millisecond)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/observation")
}

// BenchmarkInstrumentAPI is the cost per request of the wrapper with the
// real route table (matching a six-segment template), beside a bare handler.
func BenchmarkInstrumentAPI(b *testing.B) {
	m := newTestMetrics(b, nil, "n0")
	opts := api.Options{Controller: apitest.NewFake("n0"), APIKey: "k"}
	routes := api.RoutePatterns(opts)
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	req := httptest.NewRequest(http.MethodGet, "/v1/services/ws/shop/prod/web/health", nil)
	w := httptest.NewRecorder()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"instrumented", m.InstrumentAPI(bare, routes)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/request")
			b.ReportMetric(float64(len(routes)), "routes")
		})
	}
}
