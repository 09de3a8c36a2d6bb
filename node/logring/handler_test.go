package logring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLogger(t testing.TB, format string, level slog.Leveler, ring *Ring) (*slog.Logger, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	h, err := NewHandler(out, format, level, ring)
	if err != nil {
		t.Fatal(err)
	}
	return slog.New(h), out
}

func TestHandlerTextWritesAndRecords(t *testing.T) {
	ring := NewRing(10)
	log, out := newLogger(t, "text", slog.LevelInfo, ring)
	log = log.With("node", "n1")
	log.Info("agent started", "api", "127.0.0.1:9999")
	log.Debug("not shown")
	log.Warn("slow peer", "peer", "n2", "rtt", 1500*time.Millisecond)

	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("wrote %d lines: %q", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, "node=n1") {
			t.Errorf("line without the node id: %q", l)
		}
	}
	if !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], `msg="agent started"`) {
		t.Errorf("text line %q", lines[0])
	}
	es := ring.Entries(time.Time{}, 0)
	if len(es) != 2 {
		t.Fatalf("recorded %d entries", len(es))
	}
	if es[0].Level != "INFO" || es[0].Message != "agent started" || es[0].Attrs["node"] != "n1" || es[0].Attrs["api"] != "127.0.0.1:9999" {
		t.Errorf("entry %+v", es[0])
	}
	if es[1].Level != "WARN" || es[1].Attrs["rtt"] != "1.5s" || es[1].Attrs["peer"] != "n2" {
		t.Errorf("entry %+v", es[1])
	}
	if time.Since(es[0].Time) > time.Minute || es[0].Time.IsZero() {
		t.Errorf("entry time %v", es[0].Time)
	}
}

func TestHandlerJSONOutputParses(t *testing.T) {
	ring := NewRing(10)
	log, out := newLogger(t, "json", nil, ring)
	log = log.With("node", "n1").WithGroup("req")
	log.Error("failed", "path", "/v1/x", "status", 500, "err", errors.New(`bad "quote"`))
	log.Info("ok\nwith newline", slog.Group("user", "id", 7))

	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("wrote %d lines: %q", len(lines), lines)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 is not JSON: %v: %q", err, lines[0])
	}
	if first["level"] != "ERROR" || first["msg"] != "failed" || first["node"] != "n1" {
		t.Fatalf("line 1 %v", first)
	}
	req, _ := first["req"].(map[string]any)
	if req["path"] != "/v1/x" || req["status"] != float64(500) || req["err"] != `bad "quote"` {
		t.Fatalf("group req %v", first["req"])
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["msg"] != "ok\nwith newline" {
		t.Fatalf("line 2: %v %v", second, err)
	}
	es := ring.Entries(time.Time{}, 0)
	want := map[string]any{"node": "n1", "req.path": "/v1/x", "req.status": int64(500), "req.err": `bad "quote"`}
	for k, v := range want {
		if es[0].Attrs[k] != v {
			t.Errorf("attr %s = %#v, want %#v", k, es[0].Attrs[k], v)
		}
	}
	if es[1].Attrs["req.user.id"] != int64(7) {
		t.Errorf("nested group: %v", es[1].Attrs)
	}
	// Entries encode as JSON (the admin API).
	if _, err := json.Marshal(es); err != nil {
		t.Fatal(err)
	}
}

func TestHandlerWithAttrsAndGroups(t *testing.T) {
	ring := NewRing(10)
	log, _ := newLogger(t, "text", slog.LevelDebug, ring)
	base := log.With("node", "n1")
	svc := base.WithGroup("svc").With("name", "web")
	svc.WithGroup("deploy").Info("rolled", "gen", 3)
	base.Info("plain") // the group does not leak back to the parent
	base.WithGroup("empty").Info("no attrs in group")
	log.WithGroup("").With(slog.Group("", "inline", 1), slog.Attr{}).Info("inline")

	es := ring.Entries(time.Time{}, 0)
	if len(es) != 4 {
		t.Fatalf("%d entries", len(es))
	}
	check := func(i int, want map[string]any) {
		t.Helper()
		if len(es[i].Attrs) != len(want) {
			t.Errorf("entry %d attrs %v, want %v", i, es[i].Attrs, want)
			return
		}
		for k, v := range want {
			if es[i].Attrs[k] != v {
				t.Errorf("entry %d attr %s = %#v, want %#v", i, k, es[i].Attrs[k], v)
			}
		}
	}
	check(0, map[string]any{"node": "n1", "svc.name": "web", "svc.deploy.gen": int64(3)})
	check(1, map[string]any{"node": "n1"})
	check(2, map[string]any{"node": "n1"})
	check(3, map[string]any{"inline": int64(1)})
}

type secret string

func (secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

type badErr struct{}

func (*badErr) Error() string { panic("boom") }

func TestHandlerValues(t *testing.T) {
	ring := NewRing(10)
	log, _ := newLogger(t, "json", nil, ring)
	list := []string{"a", "b"}
	when := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var nilErr *badErr
	log.Info("values",
		"list", list, "when", when, "f", 1.5, "nan", math.NaN(), "u", uint64(7), "b", true,
		"tok", secret("s3cret"), "ch", make(chan int), "nilerr", error(nilErr), "nil", nil)
	list[0] = "changed" // does not change the entry

	e := ring.Entries(time.Time{}, 0)[0]
	if raw, ok := e.Attrs["list"].(json.RawMessage); !ok || string(raw) != `["a","b"]` {
		t.Errorf("list %#v", e.Attrs["list"])
	}
	for k, want := range map[string]any{"when": "2026-03-01T12:00:00Z", "f": 1.5, "nan": "NaN", "u": uint64(7), "b": true, "tok": "REDACTED", "nil": nil} {
		if e.Attrs[k] != want {
			t.Errorf("%s = %#v, want %#v", k, e.Attrs[k], want)
		}
	}
	if s, _ := e.Attrs["ch"].(string); !strings.HasPrefix(s, "0x") {
		t.Errorf("chan kept as %#v", e.Attrs["ch"])
	}
	if s, _ := e.Attrs["nilerr"].(string); !strings.Contains(s, "PANIC") {
		t.Errorf("panicking error kept as %#v", e.Attrs["nilerr"])
	}
	if _, err := json.Marshal(e); err != nil {
		t.Fatalf("entry does not encode: %v", err)
	}
}

func TestNewHandlerBadInput(t *testing.T) {
	for _, f := range []string{"xml", "JSONL", "logfmt"} {
		if _, err := NewHandler(io.Discard, f, nil, nil); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), f) {
			t.Errorf("format %q: %v", f, err)
		}
	}
	for _, f := range []string{"", "text", "JSON", " json "} {
		if _, err := NewHandler(io.Discard, f, nil, nil); err != nil {
			t.Errorf("format %q: %v", f, err)
		}
	}
	if _, err := NewHandler(nil, "text", nil, nil); err == nil {
		t.Error("nil writer accepted")
	}
	// A nil ring only writes.
	out := &syncBuffer{}
	h, _ := NewHandler(out, "text", nil, nil)
	slog.New(h).Info("x")
	if len(out.lines()) != 1 {
		t.Fatal("nothing written with a nil ring")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestHandlerWriteErrorStillRecords(t *testing.T) {
	ring := NewRing(4)
	h, _ := NewHandler(failWriter{}, "text", nil, ring)
	rec := slog.NewRecord(time.Now(), slog.LevelError, "m", 0)
	if err := h.Handle(context.Background(), rec); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error not returned: %v", err)
	}
	if ring.Len() != 1 {
		t.Fatal("record lost")
	}
	// A record without a time gets one in the ring.
	_ = h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "no time", 0))
	if es := ring.Entries(time.Time{}, 0); es[1].Time.IsZero() {
		t.Fatal("zero time kept")
	}
}

func TestHandlerConcurrentLogging(t *testing.T) {
	ring := NewRing(100)
	log, out := newLogger(t, "json", nil, ring)
	log = log.With("node", "n1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := ring.Subscribe(ctx)
	var got sync.WaitGroup
	received := 0
	got.Add(1)
	go func() {
		defer got.Done()
		for range live {
			received++
		}
	}()
	const goroutines, each = 8, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.WithGroup(fmt.Sprint("g", g))
			for i := range each {
				l.Info("tick", "i", i)
				if i%50 == 0 {
					_ = ring.Entries(time.Time{}, 5)
				}
			}
		}()
	}
	wg.Wait()
	lines := out.lines()
	if len(lines) != goroutines*each {
		t.Fatalf("wrote %d lines, want %d", len(lines), goroutines*each)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["node"] != "n1" {
			t.Fatalf("bad line %q: %v", l, err)
		}
	}
	if ring.Len() != 100 || ring.Total() != goroutines*each {
		t.Fatalf("ring len %d total %d", ring.Len(), ring.Total())
	}
	cancel()
	got.Wait()
	if uint64(received)+ring.Dropped() != goroutines*each {
		t.Fatalf("subscriber got %d + dropped %d, want %d", received, ring.Dropped(), goroutines*each)
	}
}

// TestSlowSubscriberDoesNotBlockLogger: a live tail that never reads.
func TestSlowSubscriberDoesNotBlockLogger(t *testing.T) {
	ring := NewRing(16)
	log, _ := newLogger(t, "text", nil, ring)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = ring.Subscribe(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 4 * SubscriberBuffer {
			log.Info("burst", "i", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging blocked on a subscriber that does not read")
	}
	if ring.Dropped() != 3*SubscriberBuffer {
		t.Fatalf("dropped %d", ring.Dropped())
	}
}

func BenchmarkHandler(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			ring := NewRing(2000)
			h, _ := NewHandler(io.Discard, format, nil, ring)
			log := slog.New(h).With("node", "n1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := ring.Subscribe(ctx)
			go func() {
				for range ch {
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				log.Info("request", "path", "/v1/services", "status", 200, "dur", 1200*time.Microsecond)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
		})
	}
}

func BenchmarkRingEntries(b *testing.B) {
	ring := NewRing(2000)
	h, _ := NewHandler(io.Discard, "text", nil, ring)
	log := slog.New(h).With("node", "n1")
	for i := range 2000 {
		log.Info("line", "i", i)
	}
	for b.Loop() {
		if len(ring.Entries(time.Time{}, 200)) != 200 {
			b.Fatal("short")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}
