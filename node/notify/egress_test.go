package notify

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// logBuffer collects the notifier's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebhooksRefuseInternalTargets: with the agent's default client, a
// webhook to the metadata service, to loopback (a fixed port and a real
// listener) is refused at dial time, permanently (one attempt each), and
// the listener never sees a connection.
func TestWebhooksRefuseInternalTargets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	c := newCluster(t)
	hooked := t0.Add(time.Minute)
	c.webhook(hooked, "metadata", "http://169.254.169.254/latest/meta-data/", raftfsm.WebhookGeneric)
	c.webhook(hooked, "loopback", "http://127.0.0.1:9999/hook", raftfsm.WebhookGeneric)
	c.webhook(hooked, "listener", "http://"+l.Addr().String()+"/hook", raftfsm.WebhookGeneric)
	c.webhook(hooked, "byname", "http://localhost:9999/hook", raftfsm.WebhookGeneric) // resolved, then refused
	c.event(hooked.Add(time.Minute), raftfsm.EventDeployFailed, raftfsm.SeverityError, "boom", nil)

	var logs logBuffer
	cfg := testConfig(t)
	cfg.HTTPClient = DefaultConfig().HTTPClient // the default policy
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startRun(t, c, cfg)

	for _, want := range []string{"169.254.169.254 is a link-local address", "127.0.0.1 is a loopback address", "metadata", "loopback", "listener", "byname"} {
		testkit.WaitFor(t, 10*time.Second, "a refusal naming "+want, func() bool { return strings.Contains(logs.String(), want) })
	}
	if n := strings.Count(logs.String(), "egress refused"); n < 4 {
		t.Fatalf("%d refusals logged, want one per target:\n%s", n, logs.String())
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the loopback listener accepted %d connections", n)
	}
}

// TestWebhooksFollowNoRedirectAndEchoNoAnswer: a receiver that redirects
// to another is not followed (the other sees nothing, one attempt: it is
// permanent), and what a failing receiver answers never reaches the log.
// Receivers are on loopback, which testConfig's policy allows.
func TestWebhooksFollowNoRedirectAndEchoNoAnswer(t *testing.T) {
	var inner atomic.Int32
	innerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.Add(1) }))
	defer innerSrv.Close()
	var redirects atomic.Int32
	redirSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, innerSrv.URL+"/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	defer redirSrv.Close()
	var leaks atomic.Int32
	leakSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaks.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("AKIA-SECRET-FROM-THE-TARGET"))
	}))
	defer leakSrv.Close()

	c := newCluster(t)
	hooked := t0.Add(time.Minute)
	c.webhook(hooked, "redirect", redirSrv.URL+"/hook", raftfsm.WebhookGeneric)
	c.webhook(hooked, "leak", leakSrv.URL+"/hook", raftfsm.WebhookGeneric)
	c.event(hooked.Add(time.Minute), raftfsm.EventDeployFailed, raftfsm.SeverityError, "boom", nil)

	var logs logBuffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startRun(t, c, cfg)

	testkit.WaitFor(t, 10*time.Second, "the redirect refused", func() bool { return strings.Contains(logs.String(), "a redirect (webhooks follow none)") })
	testkit.WaitFor(t, 10*time.Second, "every attempt at the failing receiver", func() bool { return leaks.Load() >= int32(cfg.MaxAttempts) })
	testkit.WaitFor(t, 10*time.Second, "the failing receiver given up", func() bool { return strings.Contains(logs.String(), "answered 500") })
	if n := inner.Load(); n != 0 {
		t.Fatalf("the redirect was followed: the target behind it got %d requests", n)
	}
	if n := redirects.Load(); n != 1 {
		t.Fatalf("the redirecting receiver got %d attempts, want 1 (a redirect is permanent)", n)
	}
	if strings.Contains(logs.String(), "AKIA-SECRET") {
		t.Fatalf("the receiver's answer reached the log:\n%s", logs.String())
	}
}
