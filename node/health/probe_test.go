package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

func TestProbeHTTPStatuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		code    int
		wantErr error
	}{
		{200, nil},
		{204, nil},
		{301, nil},
		{401, nil},
		{404, nil},
		{429, nil},
		{500, ErrServerError},
		{502, ErrServerError},
		{503, ErrServerError},
	} {
		addr := statusServer(t, tc.code)
		err := ProbeHTTP(ctx, addr, "/health", 10*time.Second)
		if tc.wantErr == nil && err != nil {
			t.Errorf("status %d: got %v, want an answer", tc.code, err)
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("status %d: got %v, want %v", tc.code, err, tc.wantErr)
		}
		if tc.wantErr != nil && err != nil && !strings.Contains(err.Error(), "/health") {
			t.Errorf("status %d: error %q does not name the URL", tc.code, err)
		}
	}
}

func TestProbeHTTPSendsPathAndDoesNotFollowRedirects(t *testing.T) {
	var gotPath atomic.Value
	var redirected atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			redirected.Add(1)
			w.WriteHeader(500)
			return
		}
		gotPath.Store(r.URL.RequestURI())
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	if err := ProbeHTTP(context.Background(), srv.Listener.Addr().String(), "/healthz?deep=1", 10*time.Second); err != nil {
		t.Fatalf("redirect is an answer: %v", err)
	}
	if p, _ := gotPath.Load().(string); p != "/healthz?deep=1" {
		t.Fatalf("server saw %q", p)
	}
	if redirected.Load() != 0 {
		t.Fatal("the probe followed the redirect")
	}
}

func TestProbeHTTPSlowServerTimesOut(t *testing.T) {
	addr := slowServer(t)
	start := time.Now()
	err := ProbeHTTP(context.Background(), addr, "/health", 150*time.Millisecond)
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("got %v, want ErrNoAnswer", err)
	}
	if !strings.Contains(err.Error(), "no response within 150ms") {
		t.Fatalf("error %q does not say it timed out", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("probe took %v with a 150ms timeout", el)
	}
}

func TestProbeHTTPClosedPort(t *testing.T) {
	err := ProbeHTTP(context.Background(), closedPort(t), "/health", 10*time.Second)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want ErrNoAnswer wrapping ECONNREFUSED", err)
	}
}

func TestProbeHTTPNotHTTP(t *testing.T) {
	// A TCP server that closes at once: connected but no HTTP answer.
	addr, _ := tcpListener(t)
	if err := ProbeHTTP(context.Background(), addr, "/", 10*time.Second); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("got %v, want ErrNoAnswer", err)
	}
}

func TestProbeHTTPCancelledContext(t *testing.T) {
	addr := statusServer(t, 200)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ProbeHTTP(ctx, addr, "/", 10*time.Second); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("got %v, want ErrNoAnswer", err)
	}
}

func TestProbeTCP(t *testing.T) {
	addr, accepted := tcpListener(t)
	if err := ProbeTCP(context.Background(), addr, 10*time.Second); err != nil {
		t.Fatalf("listener: %v", err)
	}
	testkit.WaitFor(t, 2*time.Second, "the listener to accept the probe", func() bool { return accepted() == 1 })

	err := ProbeTCP(context.Background(), closedPort(t), 10*time.Second)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("closed port: got %v", err)
	}
}

// TestProbeTCPTimeout fills the accept queue of a listener that never
// accepts, so the next SYN is dropped and the connect times out.
func TestProbeTCPTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	// Fill the queue: at most a few connects succeed before SYNs are dropped.
	var timedOut error
	for i := 0; i < 16 && timedOut == nil; i++ {
		start := time.Now()
		err := ProbeTCP(context.Background(), addr, 200*time.Millisecond)
		if err == nil {
			c, derr := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if derr == nil {
				held = append(held, c)
			}
			continue
		}
		if !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("got %v, want ErrNoAnswer", err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > 5*time.Second {
			t.Fatalf("timed out after %v with a 200ms timeout", el)
		}
		timedOut = err
	}
	if timedOut == nil {
		t.Skip("the kernel accepted every connect: cannot provoke a connect timeout here")
	}
	if !strings.Contains(timedOut.Error(), "timeout") {
		t.Fatalf("error %q does not say it timed out", timedOut)
	}
}

func TestProbeBadInput(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"", "localhost", ":80", "127.0.0.1:", "http://127.0.0.1:80", "127.0.0.1:80/x", "a b:80"} {
		if err := ProbeTCP(ctx, addr, 10*time.Second); !errors.Is(err, ErrInvalid) {
			t.Errorf("ProbeTCP(%q): got %v, want ErrInvalid", addr, err)
		}
		if err := ProbeHTTP(ctx, addr, "/", 10*time.Second); !errors.Is(err, ErrInvalid) {
			t.Errorf("ProbeHTTP(%q): got %v, want ErrInvalid", addr, err)
		}
	}
	addr := statusServer(t, 200)
	for _, path := range []string{"", "health", "/a b", "/x\r\nHost: evil", "/#frag"} {
		if err := ProbeHTTP(ctx, addr, path, 10*time.Second); !errors.Is(err, ErrInvalid) {
			t.Errorf("ProbeHTTP path %q: got %v, want ErrInvalid", path, err)
		}
	}
	if err := ProbeHTTP(ctx, addr, "/", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero timeout: got %v", err)
	}
	if err := ProbeTCP(ctx, addr, -time.Second); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative timeout: got %v", err)
	}
}

func BenchmarkProbeHTTP(b *testing.B) {
	addr := statusServer(b, 200)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := ProbeHTTP(ctx, addr, "/health", 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/probe")
}

func BenchmarkProbeTCP(b *testing.B) {
	addr, _ := tcpListener(b)
	ctx := context.Background()
	for b.Loop() {
		if err := ProbeTCP(ctx, addr, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/probe")
}
