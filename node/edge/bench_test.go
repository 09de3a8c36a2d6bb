package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchRequests drives GETs through an edge from parallel clients and
// reports throughput and latency percentiles.
func benchRequests(b *testing.B, e Edge) {
	be := newBackend(b, "A")
	if err := e.Apply(context.Background(), Config{Routes: []Route{routeTo("bench.example.test", "bench", be)}}); err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var lat []time.Duration
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+e.Addr()+"/", nil)
			req.Host = "bench.example.test"
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

func BenchmarkProxyRequest(b *testing.B) {
	h := newProxyBench(b)
	benchRequests(b, h)
}

func BenchmarkNginxRequest(b *testing.B) {
	benchRequests(b, newNginxBench(b))
}

// benchApply applies configs of n routes, alternating two upstream sets so
// every Apply changes something, and reports the time per Apply.
func benchApply(b *testing.B, e Edge, n int) {
	cfgs := [2]Config{}
	for i := range n {
		for k := range cfgs {
			cfgs[k].Routes = append(cfgs[k].Routes, Route{
				Host:      fmt.Sprintf("svc%d.example.test", i),
				Service:   fmt.Sprintf("9fe5e6/shop/prod/svc%d", i),
				Upstreams: []string{fmt.Sprintf("127.0.0.1:%d", 20000+i*2+k)},
			})
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if err := e.Apply(ctx, cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/apply")
}

func BenchmarkProxyApply(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchApply(b, newProxyBench(b), n) })
	}
}

func BenchmarkNginxApply(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchApply(b, newNginxBench(b), n) })
	}
}

func BenchmarkRender(b *testing.B) {
	var cfg Config
	for i := range 1000 {
		cfg.Routes = append(cfg.Routes, Route{
			Host:      fmt.Sprintf("svc%d.example.test", i),
			Service:   fmt.Sprintf("9fe5e6/shop/prod/svc%d", i),
			Upstreams: []string{fmt.Sprintf("10.0.0.%d:32768", i%250+1), fmt.Sprintf("10.0.1.%d:32768", i%250+1)},
		})
	}
	o := goldenOptions(false)
	for b.Loop() {
		if _, err := Render(cfg, o); err != nil {
			b.Fatal(err)
		}
	}
}

func newProxyBench(b *testing.B) *Proxy {
	p, err := NewProxy(context.Background(), ProxyOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func newNginxBench(b *testing.B) *Nginx {
	o := nginxOptions(b)
	o.Logger = nil
	o.WorkerProcesses = 2
	// 10,000 routes take nginx seconds to reload on a busy machine.
	o.Timings.ReloadTimeout = 2 * time.Minute
	return startNginx(b, o)
}
