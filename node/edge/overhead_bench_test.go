package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkEdgeOverhead loads one backend directly and through an edge
// (nginx and the built-in proxy) in the same run, with wrk when it is
// installed (else a Go load loop), and reports both throughputs, their
// ratio (the goal is >= 0.8) and both p99 latencies (the goal: the edge's
// within 2 ms of direct). Each side runs twice, alternating, and keeps its
// better round, so a burst of load from elsewhere on the machine hurts both
// sides alike rather than one.
//
//	go test -run '^$' -bench EdgeOverhead -benchtime 1x ./node/edge
func BenchmarkEdgeOverhead(b *testing.B) {
	b.Run("nginx", func(b *testing.B) {
		nginxBinary(b)
		benchOverhead(b, func(b *testing.B) Edge { return newNginxBench(b) })
	})
	b.Run("proxy", func(b *testing.B) {
		benchOverhead(b, func(b *testing.B) Edge { return newProxyBench(b) })
	})
}

// overheadRound is how long one load round lasts.
const overheadRound = 3 * time.Second

func benchOverhead(b *testing.B, newEdge func(*testing.B) Edge) {
	be := newBackend(b, "A")
	e := newEdge(b)
	const host = "bench.example.test"
	if err := e.Apply(context.Background(), Config{Routes: []Route{routeTo(host, "bench", be)}}); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		var direct, edge loadResult
		for range 2 {
			direct = direct.better(load(b, be.addr(), host, overheadRound))
			edge = edge.better(load(b, e.Addr(), host, overheadRound))
		}
		if direct.errors+edge.errors > 0 {
			b.Fatalf("failed requests: %d direct, %d through the edge", direct.errors, edge.errors)
		}
		b.ReportMetric(direct.rps, "direct-req/s")
		b.ReportMetric(edge.rps, "edge-req/s")
		b.ReportMetric(edge.rps/direct.rps, "ratio")
		b.ReportMetric(float64(direct.p99.Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(edge.p99.Microseconds()), "edge-p99-µs")
	}
}

// loadResult is one load round: throughput, 99th percentile latency and
// failed requests (transport errors and non-2xx answers).
type loadResult struct {
	rps    float64
	p99    time.Duration
	errors int
}

func (r loadResult) better(o loadResult) loadResult {
	if o.rps > r.rps {
		return o
	}
	return r
}

// load runs one round against addr with the given Host header.
func load(b *testing.B, addr, host string, d time.Duration) loadResult {
	b.Helper()
	if wrk, err := exec.LookPath("wrk"); err == nil {
		return loadWrk(b, wrk, addr, host, d)
	}
	return loadGo(b, addr, host, d)
}

// loadWrk runs wrk with 2 threads and 32 connections (the figures of issue
// 22 were taken so) and parses its summary.
func loadWrk(b *testing.B, wrk, addr, host string, d time.Duration) loadResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	secs := strconv.Itoa(max(1, int(d/time.Second)))
	out, err := exec.CommandContext(ctx, wrk, "-t2", "-c32", "-d"+secs+"s", "--latency",
		"-H", "Host: "+host, "http://"+addr+"/").CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v: %s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		b.Fatalf("wrk output: %v:\n%s", err, out)
	}
	return r
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99     = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkUnitDur = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}
)

// parseWrk reads throughput, p99 and errors from wrk's --latency summary.
func parseWrk(out string) (loadResult, error) {
	var r loadResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec line")
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	m = wrkP99.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no 99%% latency line")
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	r.p99 = time.Duration(v * float64(wrkUnitDur[m[2]]))
	if m := wrkErrors.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.errors += n
	}
	return r, nil
}

// loadGo is the fallback without wrk: 32 keep-alive clients for d.
func loadGo(b *testing.B, addr, host string, d time.Duration) loadResult {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 32, Proxy: nil}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Host = host
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					bad++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all, errs = append(all, lat...), errs+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(all) == 0 {
		return loadResult{errors: errs}
	}
	slices.Sort(all)
	return loadResult{rps: float64(len(all)) / d.Seconds(), p99: all[len(all)*99/100], errors: errs}
}

func TestParseWrk(t *testing.T) {
	out := `Running 3s test @ http://127.0.0.1:1234/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    2.10ms  40.00ms   90.00%
  Latency Distribution
     50%  800.00us
     75%    1.10ms
     90%    2.00ms
     99%   12.34ms
  33000 requests in 3.00s, 4.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  11000.50
Transfer/sec:      1.33MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 11000.50 || r.p99 != 12340*time.Microsecond || r.errors != 7 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk(strings.Replace(out, "Requests/sec", "Reqs", 1)); err == nil {
		t.Fatal("a summary without Requests/sec parsed")
	}
}
