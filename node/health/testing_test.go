package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// statusServer starts an HTTP server on 127.0.0.1 answering every request
// with code, and returns its host:port.
func statusServer(t testing.TB, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// slowServer starts an HTTP server that answers nothing until the request
// is abandoned by the client (or the test ends).
func slowServer(t testing.TB) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.Listener.Addr().String()
}

// tcpListener starts a TCP listener on 127.0.0.1 that accepts and closes
// connections, and returns its address and a count of accepted ones.
func tcpListener(t testing.TB) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// fakeLogs is a LogSource over fixed text that records what it was asked.
type fakeLogs struct {
	mu      sync.Mutex
	text    string
	err     error
	calls   int
	since   []time.Time
	maxRead []int64
}

func (f *fakeLogs) set(text string) { f.mu.Lock(); f.text = text; f.mu.Unlock() }

func (f *fakeLogs) source() LogSource {
	return func(ctx context.Context, since time.Time, maxBytes int64) (io.ReadCloser, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls++
		f.since = append(f.since, since)
		f.maxRead = append(f.maxRead, maxBytes)
		if f.err != nil {
			return nil, f.err
		}
		return io.NopCloser(strings.NewReader(f.text)), nil
	}
}

func (f *fakeLogs) lastSince(t testing.TB) time.Time {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.since) == 0 {
		t.Fatal("log source never called")
	}
	return f.since[len(f.since)-1]
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// newTestChecker returns a checker whose probe timeout is generous enough
// for a loaded machine; tests of timeouts set a short one with mod.
func newTestChecker(t testing.TB, mod func(*Config)) *Checker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ProbeTimeout = 10 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
