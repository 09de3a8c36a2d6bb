package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
)

// BenchmarkListServices is GET /v1/services over 100 and 1,000 services
// through a real socket, from one client that reads every body (to
// io.Discard, so B/op is the server's and the client's own cost, not a copy
// of the body). The state does not change between requests, so after the
// first each is served from the view cached for that state version; see
// BenchmarkListServicesChanging for the cost when every request follows a
// write.
func BenchmarkListServices(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			fake := deployMany(b, n)
			srv := newTestServer(b, fake, nil)
			benchGet(b, srv, "/v1/services", nil)
		})
	}
}

// BenchmarkListServicesChanging is GET /v1/services over 100 services with
// a write committed before each request, so no request finds its view
// cached: what the read costs when the state changes faster than it is read.
func BenchmarkListServicesChanging(b *testing.B) {
	fake := deployMany(b, 100)
	srv := newTestServer(b, fake, nil)
	i := 0
	benchGet(b, srv, "/v1/services", func() {
		i++
		if err := fake.SetNodeAPI("node-1", fmt.Sprintf("10.0.0.%d:9999", i%200+1)); err != nil {
			b.Fatal(err)
		}
	})
}

// deployMany deploys n services into a fake.
func deployMany(b *testing.B, n int) *apitest.Fake {
	fake := apitest.NewFake("node-1")
	for i := range n {
		doc := strings.Replace(webSpec, "service: web", fmt.Sprintf("service: web%d", i), 1)
		doc = strings.Replace(doc, "shop.example.com", fmt.Sprintf("s%d.example.com", i), 1)
		if _, err := fake.Deploy(b.Context(), controlDeploy(b, doc)); err != nil {
			b.Fatal(err)
		}
	}
	return fake
}

// benchGet GETs path in a loop (calling before, when set, ahead of each
// request; its cost counts too) and reports req/s and the answer's size.
func benchGet(b *testing.B, srv *httptest.Server, path string, before func()) {
	client := srv.Client()
	size := 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if before != nil {
			before()
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		size = int(n)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	b.ReportMetric(float64(size)/1024, "body-KB")
}

// BenchmarkForwardedWrite is a write through a follower: the forwarding
// hop's cost on top of the leader's.
func BenchmarkForwardedWrite(b *testing.B) {
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
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
	fake := apitest.NewFake("node-1")
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
