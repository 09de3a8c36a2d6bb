package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

// newProxyHarness starts a built-in proxy on ephemeral 127.0.0.1 ports.
func newProxyHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	logger, logs := newLogCapture(t)
	po := ProxyOptions{Listen: "127.0.0.1:0", Logger: logger, ClientMaxBodySize: o.maxBody}
	if o.tls {
		po.ListenTLS = "127.0.0.1:0"
	}
	p, err := NewProxy(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	return &harness{edge: p, tlsAddr: p.AddrTLS(), liveConfig: func() string { return "" }, accessLog: logs.String}
}

func TestProxySuite(t *testing.T) {
	runEdgeSuite(t, newProxyHarness)
}

func TestProxyCloseStopsServing(t *testing.T) {
	h := newProxyHarness(t, harnessOptions{})
	a := newBackend(t, "A")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	conn, br := wsDial(t, h.edge.Addr(), "app.example.test")
	if _, err := conn.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := br.ReadString('\n'); err != nil || got != "A:hi\n" {
		t.Fatalf("echo %q %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.edge.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The open websocket is cut, new connections are refused, Apply fails.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("websocket survived Close")
	}
	if c, err := net.DialTimeout("tcp", h.edge.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("proxy still accepts connections after Close")
	}
	if err := h.edge.Apply(context.Background(), Config{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
}

func TestProxyDrainWaitsForOldRequests(t *testing.T) {
	h := newProxyHarness(t, harnessOptions{})
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("d.example.test", "d", a)}})
	c := newClient(t, h.edge.Addr())
	done := make(chan int, 1)
	go func() {
		code, _, _ := c.do(http.MethodGet, "d.example.test", "/block", nil, 0, nil)
		done <- code
	}()
	testkit.WaitFor(t, 5*time.Second, "a blocked request", func() bool { return a.blocked.Load() == 1 })
	mustApply(t, h.edge, Config{Routes: []Route{routeTo("d.example.test", "d", b)}})
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- h.edge.Drain(ctx)
	}()
	c.expect(t, "d.example.test", "/", 200, "B")
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while an old request was in flight", err)
	default:
	}
	a.unblock()
	if code := <-done; code != 200 {
		t.Fatalf("old request = %d", code)
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

func TestProxyBadListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewProxy(context.Background(), ProxyOptions{Listen: ln.Addr().String()}); err == nil {
		t.Fatal("NewProxy on a busy port succeeded")
	}
	if _, err := NewProxy(context.Background(), ProxyOptions{Listen: "127.0.0.1:0", ClientMaxBodySize: -1}); err == nil {
		t.Fatal("NewProxy with a negative body size succeeded")
	}
}
