package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkListServices is GET /v1/services over 100 services through a
// real socket.
func BenchmarkListServices(b *testing.B) {
	fake := NewFake("node-1")
	for i := range 100 {
		doc := strings.Replace(webSpec, "service: web", fmt.Sprintf("service: web%d", i), 1)
		doc = strings.Replace(doc, "shop.example.com", fmt.Sprintf("s%d.example.com", i), 1)
		if _, err := fake.Deploy(b.Context(), controlDeploy(b, doc)); err != nil {
			b.Fatal(err)
		}
	}
	srv := newTestServer(b, fake, nil)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		a := fetch(srv, http.MethodGet, "/v1/services", nil)
		if a.err != nil || a.resp.StatusCode != http.StatusOK {
			b.Fatalf("%v %s", a.err, a.body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkForwardedWrite is a write through a follower: the forwarding
// hop's cost on top of the leader's.
func BenchmarkForwardedWrite(b *testing.B) {
	leader, follower := NewFake("node-1"), NewFake("node-2")
	ls := newTestServer(b, leader, nil)
	follower.SetLeader(false, "node-1", hostPort(ls))
	fs := newTestServer(b, follower, nil)
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, fs.URL+"/v1/workspaces/default/projects", strings.NewReader(`{"name":"shop"}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := fs.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkBlockingReadWakeUp is the time from a write to the answer of a
// blocking read waiting for it.
func BenchmarkBlockingReadWakeUp(b *testing.B) {
	fake := NewFake("node-1")
	waiting := make(chan struct{}, 1)
	srv := httptest.NewServer(newHandler(b, &signalingController{Fake: fake, changedCalled: waiting}, nil))
	b.Cleanup(srv.Close)
	var total time.Duration
	for b.Loop() {
		idx := strconv.FormatUint(fake.Index(), 10)
		drain(waiting)
		done := make(chan answer, 1)
		go func() { done <- fetch(srv, http.MethodGet, "/v1/nodes?index="+idx+"&wait=30s", nil) }()
		<-waiting
		start := time.Now()
		if err := fake.SetNodeAPI("node-1", "10.0.0.2:9999"); err != nil {
			b.Fatal(err)
		}
		a := <-done
		total += time.Since(start)
		if a.err != nil {
			b.Fatal(a.err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/wake")
}
