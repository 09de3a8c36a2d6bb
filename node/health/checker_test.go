package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

func TestCheckServiceHTTP(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	logs := &fakeLogs{text: "INFO ready\nINFO GET / 200\n"}
	healthy := Target{Kind: KindService, Addr: statusServer(t, 200), Path: "/health", Running: true, Logs: logs.source()}

	r := c.Check(ctx, "web", now, healthy)
	if r.Status != StatusHealthy || r.Reason != "" || !r.CheckedAt.Equal(now) {
		t.Fatalf("got %+v", r)
	}
	// An error line since the previous check: degraded, quoting it.
	logs.set("INFO GET / 200\n2026-03-01T12:00:30Z ERROR db: connection reset\nERROR again\n")
	now2 := now.Add(time.Minute)
	r = c.Check(ctx, "web", now2, healthy)
	if r.Status != StatusDegraded || r.Reason != "2026-03-01T12:00:30Z ERROR db: connection reset" {
		t.Fatalf("got %+v", r)
	}
	if got := logs.lastSince(t); !got.Equal(now) {
		t.Fatalf("second scan since %s, want the previous check %s", got, now)
	}
	if logs.maxRead[len(logs.maxRead)-1] != DefaultConfig().MaxLogBytes {
		t.Fatalf("source asked for %d bytes", logs.maxRead[len(logs.maxRead)-1])
	}
	// Nothing new: healthy again, scanning from the second check.
	logs.set("")
	r = c.Check(ctx, "web", now2.Add(time.Minute), healthy)
	if r.Status != StatusHealthy {
		t.Fatalf("got %+v", r)
	}
	if got := logs.lastSince(t); !got.Equal(now2) {
		t.Fatalf("third scan since %s, want %s", got, now2)
	}

	// 5xx and no answer are unhealthy, with no log read.
	short := newTestChecker(t, func(cfg *Config) { cfg.ProbeTimeout = 200 * time.Millisecond })
	for name, addr := range map[string]string{"500": statusServer(t, 500), "slow": slowServer(t), "closed": closedPort(t)} {
		calls := logs.calls
		r = short.Check(ctx, "web-"+name, now, Target{Kind: KindService, Addr: addr, Path: "/health", Running: true, Logs: logs.source()})
		if r.Status != StatusUnhealthy || r.Reason == "" {
			t.Errorf("%s: got %+v", name, r)
		}
		if logs.calls != calls {
			t.Errorf("%s: read the log of a container that did not answer", name)
		}
	}
	// 404 is an answer.
	r = c.Check(ctx, "web-404", now, Target{Kind: KindService, Addr: statusServer(t, 404), Path: "/health", Running: true})
	if r.Status != StatusHealthy {
		t.Fatalf("404: got %+v", r)
	}
}

func TestCheckServiceTCPAndStateful(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	addr, accepted := tcpListener(t)
	logs := &fakeLogs{text: "2026-03-01T12:00:00Z LOG:  checkpoint complete\n"}
	for _, kind := range []string{KindService, KindStateful, ""} {
		r := c.Check(ctx, "db-"+kind, time.Now(), Target{Kind: kind, Addr: addr, Running: true, Logs: logs.source()})
		if r.Status != StatusHealthy {
			t.Fatalf("kind %q: got %+v", kind, r)
		}
	}
	testkit.WaitFor(t, 2*time.Second, "three TCP probes", func() bool { return accepted() == 3 })

	logs.set("2026-03-01T12:00:01Z FATAL:  terminating connection due to administrator command\n")
	r := c.Check(ctx, "db", time.Now(), Target{Kind: KindStateful, Addr: addr, Running: true, Logs: logs.source()})
	if r.Status != StatusDegraded || !strings.Contains(r.Reason, "FATAL:  terminating") {
		t.Fatalf("got %+v", r)
	}
	r = c.Check(ctx, "db2", time.Now(), Target{Kind: KindStateful, Addr: closedPort(t), Running: true})
	if r.Status != StatusUnhealthy || !strings.Contains(r.Reason, "connection refused") {
		t.Fatalf("closed port: got %+v", r)
	}
}

func TestCheckExitedContainer(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	r := c.Check(ctx, "web", time.Now(), Target{Kind: KindService, Addr: closedPort(t), Path: "/", Running: false, ExitCode: 3})
	if r.Status != StatusUnhealthy || r.Reason != "container exited with code 3" {
		t.Fatalf("service: got %+v", r)
	}
	r = c.Check(ctx, "worker", time.Now(), Target{Kind: KindWorker, Running: false, ExitCode: 137})
	if r.Status != StatusUnhealthy || r.Reason != "container exited with code 137" {
		t.Fatalf("worker: got %+v", r)
	}
}

func TestCheckWorker(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	logs := &fakeLogs{text: "processing job 1\nprocessing job 2\n"}
	w := Target{Kind: KindWorker, Running: true, Logs: logs.source()}
	if r := c.Check(ctx, "w", time.Now(), w); r.Status != StatusHealthy {
		t.Fatalf("got %+v", r)
	}
	logs.set("processing job 3\nTraceback (most recent call last):\n  File \"w.py\", line 3\nKeyError: 'id'\n")
	r := c.Check(ctx, "w", time.Now(), w)
	if r.Status != StatusDegraded || r.Reason != "Traceback (most recent call last):" {
		t.Fatalf("got %+v", r)
	}
	// A service without a port is checked as a worker.
	r = c.Check(ctx, "s", time.Now(), Target{Kind: KindService, Running: true, Logs: logs.source()})
	if r.Status != StatusDegraded {
		t.Fatalf("service without address: got %+v", r)
	}
	// No log source: running is healthy.
	if r := c.Check(ctx, "w2", time.Now(), Target{Kind: KindWorker, Running: true}); r.Status != StatusHealthy {
		t.Fatalf("no logs: got %+v", r)
	}
}

func TestCheckStartGrace(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	down := Target{Kind: KindService, Addr: closedPort(t), Path: "/health", Running: true, StartGrace: 30 * time.Second}

	down.StartedAt = now.Add(-5 * time.Second)
	r := c.Check(ctx, "web", now, down)
	if r.Status != StatusStarting || !strings.Contains(r.Reason, "connection refused") {
		t.Fatalf("within grace: got %+v", r)
	}
	down.StartedAt = now.Add(-31 * time.Second)
	if r := c.Check(ctx, "web", now, down); r.Status != StatusUnhealthy {
		t.Fatalf("after grace: got %+v", r)
	}
	// A healthy container within its grace is healthy, not starting.
	up := Target{Kind: KindService, Addr: statusServer(t, 200), Path: "/", Running: true, StartedAt: now.Add(-time.Second), StartGrace: time.Minute}
	if r := c.Check(ctx, "web2", now, up); r.Status != StatusHealthy {
		t.Fatalf("healthy within grace: got %+v", r)
	}
	// Degraded stays degraded within the grace: it answered.
	logs := &fakeLogs{text: "ERROR config missing\n"}
	wk := Target{Kind: KindWorker, Running: true, Logs: logs.source(), StartedAt: now.Add(-time.Second), StartGrace: time.Minute}
	if r := c.Check(ctx, "w", now, wk); r.Status != StatusDegraded {
		t.Fatalf("degraded within grace: got %+v", r)
	}
	// A cron job within the grace of its creation.
	st := CronState{Schedule: "* * * * *", LastRunAt: now.Add(-time.Second), LastExitCode: 1}
	if r := c.Check(ctx, "job", now, Target{Kind: KindCron, Cron: &st, StartedAt: now.Add(-time.Second), StartGrace: time.Minute}); r.Status != StatusStarting {
		t.Fatalf("cron within grace: got %+v", r)
	}
}

func TestCheckFirstScanWindow(t *testing.T) {
	c := newTestChecker(t, func(cfg *Config) { cfg.FirstScanWindow = 5 * time.Minute })
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	for _, tc := range []struct {
		started, want time.Time
	}{
		{now.Add(-time.Minute), now.Add(-time.Minute)},   // since the start
		{now.Add(-time.Hour), now.Add(-5 * time.Minute)}, // no further back than the window
		{time.Time{}, now.Add(-5 * time.Minute)},         // start unknown
	} {
		logs := &fakeLogs{}
		id := fmt.Sprintf("w-%d", tc.started.Unix())
		c.Check(ctx, id, now, Target{Kind: KindWorker, Running: true, StartedAt: tc.started, Logs: logs.source()})
		if got := logs.lastSince(t); !got.Equal(tc.want) {
			t.Errorf("started %s: scanned since %s, want %s", tc.started, got, tc.want)
		}
	}
}

func TestCheckCursors(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	logs := &fakeLogs{}
	w := Target{Kind: KindWorker, Running: true, Logs: logs.source()}

	c.Check(ctx, "w", now, w)
	if cur, ok := c.Cursor("w"); !ok || !cur.Equal(now) {
		t.Fatalf("cursor %s %v", cur, ok)
	}
	since := at("2026-03-01T11:00:00Z")
	c.SetCursor("w", since)
	c.Check(ctx, "w", now.Add(time.Minute), w)
	if got := logs.lastSince(t); !got.Equal(since) {
		t.Fatalf("after SetCursor scanned since %s", got)
	}
	c.Forget("w")
	if _, ok := c.Cursor("w"); ok {
		t.Fatal("Forget kept the cursor")
	}
	c.Check(ctx, "w", now.Add(2*time.Minute), w)
	if got := logs.lastSince(t); !got.Equal(now.Add(2*time.Minute - DefaultConfig().FirstScanWindow)) {
		t.Fatalf("after Forget scanned since %s", got)
	}

	// A log that cannot be read: healthy (it runs), said so, cursor kept.
	before, _ := c.Cursor("w")
	logs.err = errors.New("docker: no such container")
	r := c.Check(ctx, "w", now.Add(3*time.Minute), w)
	if r.Status != StatusHealthy || !strings.Contains(r.Reason, "log not read: docker: no such container") {
		t.Fatalf("got %+v", r)
	}
	if cur, _ := c.Cursor("w"); !cur.Equal(before) {
		t.Fatalf("cursor moved to %s on a failed read", cur)
	}
}

// TestCheckStalledLogRead: a log source that never delivers (a stuck
// Docker) is given up after LogTimeout, through the context it was handed.
func TestCheckStalledLogRead(t *testing.T) {
	c := newTestChecker(t, func(cfg *Config) { cfg.LogTimeout = 100 * time.Millisecond })
	stalled := func(ctx context.Context, since time.Time, maxBytes int64) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("INFO partial\n"))
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
		}()
		return pr, nil
	}
	start := time.Now()
	r := c.Check(context.Background(), "w", time.Now(), Target{Kind: KindWorker, Running: true, Logs: stalled})
	if r.Status != StatusHealthy || !strings.Contains(r.Reason, "log not read") || !strings.Contains(r.Reason, "deadline exceeded") {
		t.Fatalf("got %+v", r)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("check took %v with a 100ms log timeout", el)
	}
	if _, ok := c.Cursor("w"); ok {
		t.Fatal("cursor moved on a failed read")
	}
}

func TestCheckBadTargetChangesNothing(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		id     string
		target Target
		reason string
	}{
		{"x", Target{Kind: "daemon", Running: true}, `unknown kind "daemon"`},
		{"", Target{Kind: KindWorker, Running: true}, "empty container id"},
		{"x", Target{Kind: KindService, Addr: "not-an-address", Running: true}, "want host:port"},
		{"x", Target{Kind: KindService, Addr: "127.0.0.1:1", Path: "health", Running: true}, "absolute path"},
	} {
		r := c.Check(ctx, tc.id, time.Now(), tc.target)
		if r.Status != StatusUnhealthy || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("%+v: got %+v", tc.target, r)
		}
	}
	for _, id := range []string{"x", ""} {
		if _, ok := c.Cursor(id); ok {
			t.Fatalf("a bad target moved the cursor of %q", id)
		}
	}
}

func TestNewCheckerRejectsBadConfig(t *testing.T) {
	for field, mod := range map[string]func(*Config){
		"LogPattern":      func(c *Config) { c.LogPattern = "([a-z" },
		"ProbeTimeout":    func(c *Config) { c.ProbeTimeout = 0 },
		"MaxLogBytes":     func(c *Config) { c.MaxLogBytes = -1 },
		"FirstScanWindow": func(c *Config) { c.FirstScanWindow = 0 },
		"LogTimeout":      func(c *Config) { c.LogTimeout = 0 },
		"CronGrace":       func(c *Config) { c.CronGrace = -time.Second },
		"CronMaxRun":      func(c *Config) { c.CronMaxRun = 0 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		_, err := NewChecker(cfg)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
	if _, err := NewChecker(DefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Status: StatusDegraded, Reason: "ERROR x", CheckedAt: at("2026-03-01T12:00:00Z")}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"status":"degraded","reason":"ERROR x","checked_at":"2026-03-01T12:00:00Z"}` {
		t.Fatalf("got %s", b)
	}
	for _, s := range []Status{StatusHealthy, StatusDegraded, StatusUnhealthy, StatusStarting} {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if Status("ok").Valid() {
		t.Error(`"ok" valid`)
	}
}

// TestCheckConcurrent checks many containers at once, as the agent does,
// under -race.
func TestCheckConcurrent(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	up := statusServer(t, 200)
	down := closedPort(t)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			logs := &fakeLogs{text: "INFO ok\n"}
			if i%3 == 0 {
				logs.text = "ERROR bad\n"
			}
			addr := up
			if i%4 == 0 {
				addr = down
			}
			for round := range 5 {
				r := c.Check(ctx, id, time.Now(), Target{Kind: KindService, Addr: addr, Path: "/", Running: true, Logs: logs.source()})
				want := StatusHealthy
				switch {
				case addr == down:
					want = StatusUnhealthy
				case i%3 == 0:
					want = StatusDegraded
				}
				if r.Status != want {
					errs <- fmt.Sprintf("%s round %d: got %s %q, want %s", id, round, r.Status, r.Reason, want)
					return
				}
				if round == 4 {
					c.Forget(id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkCheckServiceHTTP(b *testing.B) {
	c := newTestChecker(b, nil)
	ctx := context.Background()
	logs := &fakeLogs{text: string(benchLog()[:64<<10])}
	tgt := Target{Kind: KindService, Addr: statusServer(b, 200), Path: "/health", Running: true, Logs: logs.source()}
	for b.Loop() {
		if r := c.Check(ctx, "web", time.Now(), tgt); r.Status == StatusUnhealthy {
			b.Fatal(r.Reason)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/check")
}

// TestCheckServicePattern: a service's own log pattern replaces the default
// for its containers: a line matching it is degraded, a line only the
// default pattern matches is healthy; other containers keep the default.
func TestCheckServicePattern(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	addr := statusServer(t, http.StatusOK)
	const custom = `^\S+ OOPS\b` // a timestamp, then the service's own marker
	logs := &fakeLogs{}
	svc := Target{Kind: KindService, Addr: addr, Path: "/health", Running: true, Logs: logs.source(), LogPattern: custom}
	plain := Target{Kind: KindService, Addr: addr, Path: "/health", Running: true, Logs: logs.source()}

	logs.set("2026-03-01T11:59:59Z OOPS the cache is cold\n")
	if r := c.Check(ctx, "svc", now, svc); r.Status != StatusDegraded || r.Reason != "2026-03-01T11:59:59Z OOPS the cache is cold" {
		t.Fatalf("a line matching the service pattern: %+v", r)
	}
	if r := c.Check(ctx, "plain", now, plain); r.Status != StatusHealthy {
		t.Fatalf("the same line under the default pattern: %+v", r)
	}

	logs.set("ERROR database unreachable\n")
	if r := c.Check(ctx, "svc", now.Add(time.Minute), svc); r.Status != StatusHealthy || r.Reason != "" {
		t.Fatalf("a default-pattern line the service pattern excludes: %+v", r)
	}
	if r := c.Check(ctx, "plain", now.Add(time.Minute), plain); r.Status != StatusDegraded {
		t.Fatalf("the same line under the default pattern: %+v", r)
	}

	// Compiled once: the second container with the pattern shares it.
	c.Check(ctx, "svc2", now, svc)
	c.mu.Lock()
	cached := len(c.scanners)
	c.mu.Unlock()
	if cached != 1 {
		t.Fatalf("%d compiled patterns cached, want 1", cached)
	}

	// A pattern that does not compile (a state older than the spec's
	// validation): degraded, saying why, the cursor where it was.
	before, _ := c.Cursor("svc")
	bad := svc
	bad.LogPattern = `(oops`
	r := c.Check(ctx, "svc", now.Add(2*time.Minute), bad)
	if r.Status != StatusDegraded || !strings.Contains(r.Reason, "log not scanned") || !strings.Contains(r.Reason, "(oops") {
		t.Fatalf("invalid pattern: %+v", r)
	}
	if cur, _ := c.Cursor("svc"); !cur.Equal(before) {
		t.Fatalf("cursor moved to %s on an invalid pattern", cur)
	}
}

// TestCheckPatternCacheBounded: a stream of patterns cannot grow the cache
// past its bound, and an evicted pattern still works.
func TestCheckPatternCacheBounded(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	logs := &fakeLogs{text: "marker-7 here\n"}
	for i := range 3 * maxCachedScanners {
		w := Target{Kind: KindWorker, Running: true, Logs: logs.source(), LogPattern: fmt.Sprintf(`^marker-%d\b`, i)}
		want := StatusHealthy
		if i == 7 {
			want = StatusDegraded
		}
		if r := c.Check(ctx, fmt.Sprintf("w%d", i), now, w); r.Status != want {
			t.Fatalf("pattern %d: %+v, want %s", i, r, want)
		}
	}
	c.mu.Lock()
	cached := len(c.scanners)
	c.mu.Unlock()
	if cached > maxCachedScanners {
		t.Fatalf("%d patterns cached, bound %d", cached, maxCachedScanners)
	}
}

// TestCheckOnceLeavesTheCursor: an on-demand check scans from the time it
// is given (or as a first check would) and does not move the cursor of the
// periodic checks, so they still see every new line.
func TestCheckOnceLeavesTheCursor(t *testing.T) {
	c := newTestChecker(t, nil)
	ctx := context.Background()
	now := at("2026-03-01T12:00:00Z")
	logs := &fakeLogs{}
	w := Target{Kind: KindWorker, Running: true, Logs: logs.source(), StartedAt: now.Add(-time.Hour)}

	c.Check(ctx, "w", now, w)
	logs.set("ERROR disk full\n")
	since := now.Add(-10 * time.Minute)
	if r := c.CheckOnce(ctx, "w", now.Add(time.Minute), since, w); r.Status != StatusDegraded || r.Reason != "ERROR disk full" {
		t.Fatalf("on demand: %+v", r)
	}
	if got := logs.lastSince(t); !got.Equal(since) {
		t.Fatalf("on demand scanned since %s, want %s", got, since)
	}
	if cur, _ := c.Cursor("w"); !cur.Equal(now) {
		t.Fatalf("on-demand check moved the cursor to %s", cur)
	}
	c.CheckOnce(ctx, "w", now.Add(time.Minute), time.Time{}, w)
	if got, want := logs.lastSince(t), now.Add(time.Minute-DefaultConfig().FirstScanWindow); !got.Equal(want) {
		t.Fatalf("on demand without since scanned since %s, want %s", got, want)
	}
	// The periodic check still reports the line, from its own cursor.
	if r := c.Check(ctx, "w", now.Add(2*time.Minute), w); r.Status != StatusDegraded {
		t.Fatalf("periodic check after an on-demand one: %+v", r)
	}
	if got := logs.lastSince(t); !got.Equal(now) {
		t.Fatalf("periodic check scanned since %s, want its cursor %s", got, now)
	}
	// An id never checked periodically gets no cursor from CheckOnce.
	c.CheckOnce(ctx, "other", now, time.Time{}, w)
	if _, ok := c.Cursor("other"); ok {
		t.Fatal("CheckOnce created a cursor")
	}
}
