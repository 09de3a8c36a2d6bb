package edge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
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
// every Apply changes something, and reports the time per Apply:
// "ms/apply" (the median) for changes that arrive apart, as a deploy makes
// them (nginx: one every applyPace, the wait outside the timing; the
// built-in proxy needs no pause), and
// "burst-ms/apply" for changes applied back to back, each as soon as the
// previous one returned.
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
	if err := e.Apply(ctx, cfgs[1]); err != nil {
		b.Fatal(err)
	}
	var paced []time.Duration
	ng, _ := e.(*Nginx)
	cpu0 := masterCPU(ng)
	pace := time.NewTicker(applyPace)
	defer pace.Stop()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if ng != nil {
			b.StopTimer()
			<-pace.C
			b.StartTimer()
		}
		t0 := time.Now()
		if err := e.Apply(ctx, cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
		paced = append(paced, time.Since(t0))
	}
	b.StopTimer()
	if ng != nil {
		// The master's own CPU time (parse, fork) per change: what a
		// reload costs on an idle machine, whatever the load here.
		b.ReportMetric(float64((masterCPU(ng)-cpu0).Microseconds())/1000/float64(len(paced)), "master-cpu-ms/apply")
	}
	const burst = 5
	t0 := time.Now()
	for i := range burst {
		if err := e.Apply(ctx, cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(paced)
	b.ReportMetric(float64(paced[len(paced)/2].Microseconds())/1000, "ms/apply")
	b.ReportMetric(float64(paced[len(paced)-1].Microseconds())/1000, "max-ms/apply")
	b.ReportMetric(float64(time.Since(t0).Microseconds())/1000/burst, "burst-ms/apply")
}

// masterCPU is the CPU time (user and system) an nginx master has used so
// far, from /proc (0 without it or for another edge).
func masterCPU(n *Nginx) time.Duration {
	if n == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.Pid()))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// applyPace spaces the changes of benchApply's "ms/apply": nginx's master
// sleeps 100 ms after starting a reload's workers and only then takes the
// next reload signal, so changes closer together than that queue behind one
// another (the burst figure shows it).
const applyPace = 250 * time.Millisecond

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
