package edge

// The behaviour suite every Edge implementation passes: written once, run
// for the built-in proxy always and for nginx when it is installed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// testEdge is what the suite drives: an Edge that can also Drain.
type testEdge interface {
	Edge
	Drain(ctx context.Context) error
}

// harness is one edge under test and how to look inside it.
type harness struct {
	edge    testEdge
	tlsAddr string
	// liveConfig returns the config text nginx serves, "" for the proxy.
	liveConfig func() string
	// accessLog returns the access log so far.
	accessLog func() string
}

// harnessOptions shape the edge a subtest needs.
type harnessOptions struct {
	tls     bool
	maxBody int64
}

type newHarness func(t *testing.T, o harnessOptions) *harness

func runEdgeSuite(t *testing.T, newEdge newHarness) {
	t.Run("routing", func(t *testing.T) { testRouting(t, newEdge) })
	t.Run("wildcard", func(t *testing.T) { testWildcard(t, newEdge) })
	t.Run("roundrobin", func(t *testing.T) { testRoundRobin(t, newEdge) })
	t.Run("retry", func(t *testing.T) { testRetry(t, newEdge) })
	t.Run("websocket", func(t *testing.T) { testWebsocket(t, newEdge) })
	t.Run("bodylimit", func(t *testing.T) { testBodyLimit(t, newEdge) })
	t.Run("ui", func(t *testing.T) { testUIHost(t, newEdge) })
	t.Run("inflight", func(t *testing.T) { testInFlightSurviveApply(t, newEdge) })
	t.Run("switch", func(t *testing.T) { testSwitchUnderLoad(t, newEdge) })
	t.Run("burst", func(t *testing.T) { testBurstOfChanges(t, newEdge) })
	t.Run("keepalive", func(t *testing.T) { testUpstreamKeepalive(t, newEdge) })
	t.Run("undeploy", func(t *testing.T) { testUndeploy(t, newEdge) })
	t.Run("invalid", func(t *testing.T) { testInvalidChangesNothing(t, newEdge) })
	t.Run("tls", func(t *testing.T) { testTLS(t, newEdge) })
	t.Run("redirect", func(t *testing.T) { testRedirectHTTPS(t, newEdge) })
}

func mustApply(t testing.TB, e Edge, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Apply(ctx, cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func testRouting(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a := newBackend(t, "A")
	// The longest host name Validate allows (253 characters) must work too.
	long := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 56) + ".test"
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("app.example.test", "web", a), routeTo(long, "long", a)}})
	c := newClient(t, h.edge.Addr())

	c.expect(t, "app.example.test", "/", 200, "A")
	c.expect(t, long, "/", 200, "A")
	c.expect(t, "APP.Example.TEST:8080", "/", 200, "A")
	c.expect(t, "app.example.test.", "/", 200, "A")
	hits := a.hits.Load()
	c.expect(t, "other.example.test", "/", 404, "")
	c.expect(t, "example.test", "/", 404, "")
	if a.hits.Load() != hits {
		t.Fatal("a request for an unknown host reached the backend")
	}

	code, _, err := c.do(http.MethodGet, "app.example.test", "/", nil, 0, http.Header{
		"X-Forwarded-For":   {"10.1.2.3"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Proto": {"https"},
		"X-Real-Ip":         {"10.9.9.9"},
	})
	if err != nil || code != 200 {
		t.Fatalf("GET with forwarded headers: %d %v", code, err)
	}
	got := a.lastHeaders()
	for k, want := range map[string]string{
		"Host":              "app.example.test",
		"X-Forwarded-For":   "10.1.2.3, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "app.example.test",
		"X-Real-Ip":         "127.0.0.1",
	} {
		if got.Get(k) != want {
			t.Errorf("backend saw %s = %q, want %q", k, got.Get(k), want)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "an access log line naming the service", func() bool {
		return strings.Contains(h.accessLog(), "9fe5e6/shop/prod/web")
	})
}

func testWildcard(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	w, x := newBackend(t, "W"), newBackend(t, "X")
	mustApply(t, h.edge, Config{Routes: []Route{
		routeTo("*.wild.example.test", "wild", w),
		routeTo("x.wild.example.test", "exact", x),
	}})
	c := newClient(t, h.edge.Addr())
	c.expect(t, "a.wild.example.test", "/", 200, "W")
	c.expect(t, "a.b.wild.example.test", "/", 200, "W")
	c.expect(t, "x.wild.example.test", "/", 200, "X")
	c.expect(t, "wild.example.test", "/", 404, "")
}

func testRoundRobin(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	b1, b2 := newBackend(t, "B1"), newBackend(t, "B2")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("rr.example.test", "rr", b1, b2)}})
	c := newClient(t, h.edge.Addr())
	seen := map[string]int{}
	for range 40 {
		code, body := c.get(t, "rr.example.test", "/")
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		seen[body]++
	}
	if seen["B1"] < 5 || seen["B2"] < 5 {
		t.Fatalf("traffic not spread across upstreams: %v", seen)
	}
}

func testRetry(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	b := newBackend(t, "B")
	dead := freeAddr(t)
	mustApply(t, h.edge, Config{Routes: []Route{{Host: "retry.example.test", Service: "9fe5e6/shop/prod/retry",
		Upstreams: []string{dead, b.addr()}}}})
	c := newClient(t, h.edge.Addr())
	for i := range 20 {
		code, body := c.get(t, "retry.example.test", "/")
		if code != 200 || body != "B" {
			t.Fatalf("request %d: %d %q: a refused upstream was not retried on the next one", i, code, body)
		}
	}
	// With every upstream refusing, the client gets a 502, not a hang.
	mustApply(t, h.edge, Config{Routes: []Route{{Host: "retry.example.test", Service: "9fe5e6/shop/prod/retry",
		Upstreams: []string{dead}}}})
	c.expect(t, "retry.example.test", "/", http.StatusBadGateway, "")
}

func testWebsocket(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a := newBackend(t, "A")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("ws.example.test", "ws", a)}})
	conn, br := wsDial(t, h.edge.Addr(), "ws.example.test")
	for i := range 3 {
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("websocket echo: %v", err)
		}
		if got != "A:"+msg {
			t.Fatalf("websocket echo = %q, want %q", got, "A:"+msg)
		}
	}
}

func testBodyLimit(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{maxBody: 1 << 20})
	a := newBackend(t, "A")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("up.example.test", "up", a)}})
	c := newClient(t, h.edge.Addr())

	small := bytes.Repeat([]byte("x"), 512<<10)
	code, body, err := c.do(http.MethodPost, "up.example.test", "/body", bytes.NewReader(small), int64(len(small)), nil)
	if err != nil || code != 200 || body != fmt.Sprint(len(small)) {
		t.Fatalf("POST 512 KiB = %d %q %v, want 200 %d", code, body, err, len(small))
	}
	hits := a.hits.Load()
	big := bytes.Repeat([]byte("x"), 2<<20)
	code, _, err = c.do(http.MethodPost, "up.example.test", "/body", bytes.NewReader(big), int64(len(big)), nil)
	if err != nil || code != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST 2 MiB = %d %v, want 413", code, err)
	}
	if a.hits.Load() != hits {
		t.Fatal("an oversized body reached the backend")
	}
	// Without a length (chunked), the cap applies as the body streams.
	code, body, err = c.do(http.MethodPost, "up.example.test", "/body", io.MultiReader(bytes.NewReader(big)), -1, nil)
	if err == nil && code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked POST 2 MiB = %d %q, want 413 or a cut connection", code, body)
	}
}

func testUIHost(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	ui, a := newBackend(t, "UI"), newBackend(t, "A")
	mustApply(t, h.edge, Config{
		Routes: []Route{routeTo("app.example.test", "web", a)},
		UIHost: "mesh.example.test", UIUpstream: ui.addr(),
	})
	c := newClient(t, h.edge.Addr())
	c.expect(t, "mesh.example.test", "/", 200, "UI")
	c.expect(t, "app.example.test", "/", 200, "A")
}

// testInFlightSurviveApply holds requests inside the old backend while the
// route moves away: they must complete on it, while new requests already
// reach the new backend.
func testInFlightSurviveApply(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("live.example.test", "live", a)}})
	c := newClient(t, h.edge.Addr())

	const n = 3
	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			code, body, err := c.do(http.MethodGet, "live.example.test", "/block", nil, 0, nil)
			results <- result{code, body, err}
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "requests blocked in backend A", func() bool { return a.blocked.Load() == n })
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("live.example.test", "live", b)}})
	c.expect(t, "live.example.test", "/", 200, "B")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := h.edge.Drain(ctx); err == nil && a.inflight.Load() > 0 {
		t.Fatal("Drain returned while requests of the old config were in flight")
	}
	cancel()

	a.unblock()
	for range n {
		select {
		case r := <-results:
			if r.err != nil || r.code != 200 || r.body != "A" {
				t.Fatalf("in-flight request across Apply: %d %q %v, want 200 A", r.code, r.body, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("in-flight request did not complete")
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.edge.Drain(ctx); err != nil {
		t.Fatalf("Drain after the old requests finished: %v", err)
	}
}

// testSwitchUnderLoad switches a route between backend generations while 4
// clients send requests (some slow), draining each old backend only after
// the switch: no request may fail.
// testUpstreamKeepalive: the edge reuses its connections to a container
// instead of opening one per request (nginx: at most one per worker).
func testUpstreamKeepalive(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a := newBackend(t, "A")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	c := newClient(t, h.edge.Addr())
	const requests = 50
	for range requests {
		c.expect(t, "app.example.test", "/", 200, "A")
	}
	if n := a.conns.Load(); n > 4 {
		t.Fatalf("%d requests opened %d connections to the container, want them reused", requests, n)
	}
	if got := a.lastHeaders().Get("Connection"); got != "" {
		t.Fatalf("the container saw Connection: %q on a plain request, want none (keep-alive)", got)
	}
}

// testBurstOfChanges makes 100 route changes in a row (hosts added and
// removed, the loaded host's upstreams changed) while clients load one
// host: no request fails, and the last config is what serves.
func testBurstOfChanges(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	const (
		host    = "steady.example.test"
		changes = 100
		clients = 2
		maxTime = 2 * time.Minute // a bound, not a goal: the burst ends it
	)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	config := func(i int) Config {
		steady := routeTo(host, "steady", a)
		if i%2 == 1 {
			steady = routeTo(host, "steady", a, b)
		}
		cfg := Config{Routes: []Route{steady}}
		for k := range 20 {
			cfg.Routes = append(cfg.Routes, routeTo(fmt.Sprintf("churn%d.example.test", (i+k)%40), fmt.Sprintf("churn%d", (i+k)%40), b))
		}
		return cfg
	}
	mustApply(t, h.edge, config(0))
	c := newClient(t, h.edge.Addr())
	var (
		total, failed atomic.Int64
		stop          atomic.Bool
		mu            sync.Mutex
		failures      []string
		wg            sync.WaitGroup
	)
	deadline := time.Now().Add(maxTime)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(deadline) {
				total.Add(1)
				code, body, err := c.do(http.MethodGet, host, "/", nil, 0, nil)
				if err != nil || code != 200 || (body != "A" && body != "B") {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
					}
					mu.Unlock()
				}
			}
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "the load to start", func() bool { return total.Load() > 10 })
	began := total.Load()
	start := time.Now()
	var applying time.Duration
	for i := 1; i <= changes; i++ {
		t0 := time.Now()
		mustApply(t, h.edge, config(i))
		applying += time.Since(t0)
		// Requests run between every two changes, not only around the burst.
		n := total.Load()
		testkit.WaitFor(t, 10*time.Second, "requests after a change", func() bool { return total.Load() >= n+2 })
	}
	took := time.Since(start)
	during := total.Load() - began
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across %d route changes; first: %v", failed.Load(), total.Load(), changes, failures)
	}
	t.Logf("%d route changes in %s (applying %s each) under load: %d requests, none failed", changes, took, applying/changes, during)
	// The last config (100: even, so steady has A alone) serves.
	c.expect(t, host, "/", 200, "A")
	c.expect(t, fmt.Sprintf("churn%d.example.test", changes%40), "/", 200, "B")
	c.expect(t, fmt.Sprintf("churn%d.example.test", (changes+20)%40), "/", 404, "")
}

func testSwitchUnderLoad(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	const (
		host        = "switch.example.test"
		clients     = 4
		maxRequests = 2000
		maxTime     = 5 * time.Second
		switches    = 5
	)
	gen := []*backend{newBackend(t, "gen0")}
	mustApply(t, h.edge, Config{Routes: []Route{routeTo(host, "switch", gen[0])}})
	c := newClient(t, h.edge.Addr())

	var (
		total, failed atomic.Int64
		mu            sync.Mutex
		failures      []string
		wg            sync.WaitGroup
	)
	began := time.Now()
	deadline := began.Add(maxTime)
	done := func() bool { return total.Load() >= maxRequests || time.Now().After(deadline) }
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done(); i++ {
				path := "/"
				if i%25 == w {
					path = "/slow"
				}
				total.Add(1)
				code, body, err := c.do(http.MethodGet, host, path, nil, 0, nil)
				if err != nil || code != 200 || !strings.HasPrefix(body, "gen") {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%s: %d %q %v", path, code, body, err))
					}
					mu.Unlock()
				}
			}
		}()
	}
	switched := 0
	for i := 1; i <= switches && !done(); i++ {
		// Pace the switches across the run: by request count or by time,
		// whichever comes first.
		target := int64(i * maxRequests / (switches + 2))
		at := began.Add(time.Duration(i) * maxTime / (switches + 2))
		ctx, cancel := context.WithDeadline(context.Background(), at)
		waitUntil(ctx, 2*time.Millisecond, func() bool { return total.Load() >= target })
		cancel()
		next := newBackend(t, fmt.Sprintf("gen%d", i))
		gen = append(gen, next)
		mustApply(t, h.edge, Config{Routes: []Route{routeTo(host, "switch", next)}})
		dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := h.edge.Drain(dctx); err != nil {
			cancel()
			t.Fatalf("drain after switch %d: %v", i, err)
		}
		cancel()
		gen[i-1].close() // the old container stops only now
		switched++
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across %d switches; first: %v", failed.Load(), total.Load(), switched, failures)
	}
	if switched < 3 {
		t.Fatalf("only %d switches happened during the load (%d requests)", switched, total.Load())
	}
	last := gen[len(gen)-1]
	c.expect(t, host, "/", 200, last.name)
	for i, g := range gen[:len(gen)-1] {
		if g.hits.Load() == 0 && i > 0 {
			t.Errorf("backend %s never got traffic", g.name)
		}
	}
	t.Logf("%d requests, %d switches, 0 failures", total.Load(), switched)
}

func testUndeploy(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("gone.example.test", "gone", a), routeTo("stay.example.test", "stay", b)}})
	c := newClient(t, h.edge.Addr())
	c.expect(t, "gone.example.test", "/", 200, "A")
	if cfg := h.liveConfig(); cfg != "" && !strings.Contains(cfg, "gone.example.test") {
		t.Fatal("live config lacks the deployed host")
	}
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("stay.example.test", "stay", b)}})
	c.expect(t, "gone.example.test", "/", 404, "")
	c.expect(t, "stay.example.test", "/", 200, "B")
	if strings.Contains(h.liveConfig(), "gone.example.test") {
		t.Fatal("live config still names the undeployed host")
	}
	mustApply(t, h.edge, Config{})
	c.expect(t, "stay.example.test", "/", 404, "")
}

func testInvalidChangesNothing(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{})
	a := newBackend(t, "A")
	good := routeTo("good.example.test", "good", a)
	mustApply(t, h.edge, Config{Routes: []Route{good}})
	c := newClient(t, h.edge.Addr())
	before := h.liveConfig()
	svc := good.Service
	up := []string{a.addr()}
	for _, tc := range invalidConfigs(svc, up) {
		cfg := tc.cfg
		cfg.Routes = append([]Route{good}, cfg.Routes...)
		err := h.edge.Apply(context.Background(), cfg)
		if err == nil {
			t.Errorf("%s: Apply accepted it", tc.name)
			continue
		}
		if !errors.Is(err, raftfsm.ErrInvalid) {
			t.Errorf("%s: error %v does not wrap raftfsm.ErrInvalid", tc.name, err)
		}
		if tc.mention != "" && !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.mention)
		}
		if after := h.liveConfig(); after != before {
			t.Fatalf("%s: the live config changed", tc.name)
		}
	}
	c.expect(t, "good.example.test", "/", 200, "A")
}

// invalidCase is a config Validate must refuse, and what the error names.
type invalidCase struct {
	name    string
	cfg     Config
	mention string
}

// invalidConfigs lists bad configs; each is added to a good route.
func invalidConfigs(svc string, up []string) []invalidCase {
	r := func(host string) Config { return Config{Routes: []Route{{Host: host, Service: svc, Upstreams: up}}} }
	u := func(addrs ...string) Config {
		return Config{Routes: []Route{{Host: "bad.example.test", Service: svc, Upstreams: addrs}}}
	}
	return []invalidCase{
		{"semicolon", r("a.example.test;evil"), "a.example.test;evil"},
		{"brace open", r("a{.example.test"), "a{"},
		{"brace close", r("a}.example.test"), "a}"},
		{"space", r("a b.example.test"), "a b"},
		{"newline", r("a.example.test\nserver_name x"), "label"},
		{"tab", r("a\t.example.test"), "label"},
		{"dollar", r("$host.example.test"), "label"},
		{"quote", r(`a".example.test`), "label"},
		{"cyrillic a", r("\u0430pp.example.test"), "label"},
		{"fullwidth dot", r("app\uff0eexample.test"), ""},
		{"uppercase", r("App.example.test"), "label"},
		{"star not leftmost", r("a.*.example.test"), "label"},
		{"star partial", r("a*.example.test"), "label"},
		{"one label", r("localhost"), "two labels"},
		{"empty host", r(""), "empty"},
		{"duplicate host", r("good.example.test"), "duplicate host \"good.example.test\""},
		{"ui duplicate", Config{UIHost: "good.example.test", UIUpstream: up[0]}, "duplicate host"},
		{"no upstreams", u(), "no upstreams"},
		{"upstream hostname", u("backend.internal:8080"), "not an IP"},
		{"upstream no port", u("127.0.0.1"), "ip:port"},
		{"upstream port 0", u("127.0.0.1:0"), "1-65535"},
		{"upstream port big", u("127.0.0.1:70000"), "1-65535"},
		{"upstream port sign", u("127.0.0.1:+80"), "1-65535"},
		{"upstream injection", u("127.0.0.1:80; include /etc/passwd"), ""},
		{"upstream brace", u("127.0.0.1:80}"), ""},
		{"upstream unspecified", u("0.0.0.0:80"), "cannot be connected"},
		{"upstream duplicate", u(up[0], up[0]), "twice"},
		{"bad service", Config{Routes: []Route{{Host: "s.example.test", Service: "shop/prod/web;x", Upstreams: up}}}, "service"},
		{"empty service", Config{Routes: []Route{{Host: "s.example.test", Upstreams: up}}}, "service"},
		{"ui without upstream", Config{UIHost: "mesh.example.test"}, "UI upstream"},
		{"ui wildcard", Config{UIHost: "*.example.test", UIUpstream: up[0]}, "wildcard"},
		{"bad cert", Config{Certs: []Cert{{Zone: "example.test", CertPEM: []byte("nope"), KeyPEM: []byte("nope")}}}, "certificate"},
		{"bad zone", Config{Certs: []Cert{{Zone: "example test"}}}, "zone"},
	}
}

func testTLS(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{tls: true})
	a, p := newBackend(t, "A"), newBackend(t, "P")
	cert, pool := selfSignedZone(t, "example.test")
	mustApply(t, h.edge, Config{
		Routes: []Route{routeTo("app.example.test", "web", a), routeTo("plain.other.test", "plain", p)},
		Certs:  []Cert{cert},
	})
	code, body, _, err := tlsGet(h.tlsAddr, "app.example.test", "app.example.test", pool)
	if err != nil || code != 200 || body != "A" {
		t.Fatalf("HTTPS app.example.test = %d %q %v, want 200 A", code, body, err)
	}
	if got := a.lastHeaders().Get("X-Forwarded-Proto"); got != "https" {
		t.Fatalf("X-Forwarded-Proto over TLS = %q, want https", got)
	}
	if _, _, _, err := tlsGet(h.tlsAddr, "nope.unknown.test", "nope.unknown.test", nil); err == nil {
		t.Fatal("TLS handshake for a name without a certificate succeeded")
	}
	// A host outside every zone is not served over TLS, even with a valid SNI.
	code, _, _, err = tlsGet(h.tlsAddr, "app.example.test", "plain.other.test", pool)
	if err != nil || code != 404 {
		t.Fatalf("HTTPS with Host plain.other.test = %d %v, want 404", code, err)
	}
	newClient(t, h.edge.Addr()).expect(t, "plain.other.test", "/", 200, "P")
}

// testRedirectHTTPS: a route with RedirectHTTPS and a certificate, and the
// UI host under a certificate, answer plain HTTP with a permanent redirect to
// the same URL over HTTPS (the edge's TLS port) and are served over TLS; a
// route with the flag but no certificate, and one without the flag, are
// still served over plain HTTP.
func testRedirectHTTPS(t *testing.T, newEdge newHarness) {
	h := newEdge(t, harnessOptions{tls: true})
	a, p, q, ui := newBackend(t, "A"), newBackend(t, "P"), newBackend(t, "Q"), newBackend(t, "UI")
	cert, pool := selfSignedZone(t, "example.test")
	secure := routeTo("app.example.test", "web", a)
	secure.RedirectHTTPS = true
	nocert := routeTo("plain.other.test", "plain", p)
	nocert.RedirectHTTPS = true
	mustApply(t, h.edge, Config{
		Routes: []Route{secure, nocert, routeTo("both.example.test", "both", q)},
		UIHost: "mesh.example.test", UIUpstream: ui.addr(),
		Certs: []Cert{cert},
	})
	_, tlsPort, err := net.SplitHostPort(h.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer hc.CloseIdleConnections()
	for _, host := range []string{"app.example.test", "mesh.example.test"} {
		hits := a.hits.Load() + ui.hits.Load()
		req, _ := http.NewRequest(http.MethodGet, "http://"+h.edge.Addr()+"/some/path?q=1", nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := "https://" + host + ":" + tlsPort + "/some/path?q=1"
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("plain GET %s = %d Location %q, want 308 to %s", host, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if a.hits.Load()+ui.hits.Load() != hits {
			t.Fatalf("the redirected request for %s reached a backend", host)
		}
	}
	for host, want := range map[string]string{"app.example.test": "A", "mesh.example.test": "UI"} {
		code, body, _, err := tlsGet(h.tlsAddr, host, host, pool)
		if err != nil || code != 200 || body != want {
			t.Fatalf("HTTPS %s = %d %q %v, want 200 %s", host, code, body, err, want)
		}
	}
	c := newClient(t, h.edge.Addr())
	c.expect(t, "plain.other.test", "/", 200, "P")
	c.expect(t, "both.example.test", "/", 200, "Q")
	if code, body, _, err := tlsGet(h.tlsAddr, "both.example.test", "both.example.test", pool); err != nil || code != 200 || body != "Q" {
		t.Fatalf("HTTPS both.example.test = %d %q %v, want 200 Q", code, body, err)
	}
	c.expect(t, "unknown.example.test", "/", 404, "")
}
