package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

// TestRenewalUnderLoad: both ends of an HTTPS connection pool renew
// certificates that live 2 s; requests keep succeeding past the first
// certificates' expiry, and a new connection presents the new certificate.
func TestRenewalUnderLoad(t *testing.T) {
	ca := testCA(t)
	const validity = 2 * time.Second
	server := issue(t, ca, "n1", time.Now(), validity)
	client := issue(t, ca, "n2", time.Now(), validity)
	firstExpiry := client.NotAfter()
	firstServerSerial, firstClientSerial := server.Serial(), client.Serial()
	v := &Verifier{Roots: ca.Pool()}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(server, v, tls.RequireAndVerifyClientCert))
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, SerialOf(r.TLS.PeerCertificates[0]))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	sign := func(id Identity) RenewFunc {
		return func(_ context.Context, csrPEM []byte) ([]byte, error) {
			certPEM, _, _, err := ca.Sign(csrPEM, id, time.Now(), validity)
			return certPEM, err
		}
	}
	dir := t.TempDir()
	for _, c := range []*Credentials{server, client} {
		r := &Renewer{Creds: c, Renew: sign(c.Identity()), MinBackoff: 50 * time.Millisecond, Logger: quiet}
		if c == client {
			r.Dir = dir
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ClientConfig(client, v, "n1")}, Timeout: 5 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	get := func() string {
		t.Helper()
		resp, err := hc.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatalf("request during renewal: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != firstClientSerial {
		t.Fatalf("server saw %s, want %s", got, firstClientSerial)
	}
	// Keep the pool busy until the first certificates have expired and both
	// sides renewed.
	testkit.WaitFor(t, 10*time.Second, "renewals past the first expiry", func() bool {
		get()
		return time.Now().After(firstExpiry.Add(500*time.Millisecond)) &&
			server.Serial() != firstServerSerial && client.Serial() != firstClientSerial
	})
	if n := conns.Load(); n != 1 {
		t.Fatalf("the pool opened %d connections; the first should have carried every request", n)
	}
	// A new connection: the server sees the client's current certificate,
	// and the saved copy is the current one.
	hc.CloseIdleConnections()
	if got := get(); got == firstClientSerial {
		t.Fatalf("a new connection presented the first certificate %s", got)
	}
	if conns.Load() != 2 {
		t.Fatalf("%d connections, want a second one", conns.Load())
	}
	var saved *Credentials
	testkit.WaitFor(t, 5*time.Second, "the saved certificate to be a renewed one", func() bool {
		saved, err = LoadCredentials(dir)
		return err == nil && saved.Serial() != firstClientSerial
	})
}

// TestRenewerRetries: a failing CA is retried with backoff until it answers.
func TestRenewerRetries(t *testing.T) {
	ca := testCA(t)
	c := issue(t, ca, "n1", time.Now(), time.Second)
	first := c.Serial()
	var calls atomic.Int32
	r := &Renewer{Creds: c, Logger: quiet, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Renew: func(_ context.Context, csrPEM []byte) ([]byte, error) {
			if calls.Add(1) < 4 {
				return nil, errors.New("voter unreachable")
			}
			certPEM, _, _, err := ca.Sign(csrPEM, Identity{NodeID: "n1", IPs: []net.IP{loopback}}, time.Now(), time.Hour)
			return certPEM, err
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testkit.WaitFor(t, 5*time.Second, "renewal after failures", func() bool { return c.Serial() != first })
	if calls.Load() != 4 {
		t.Fatalf("%d calls, want 4", calls.Load())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v", err)
	}
	// A renewal that answers a certificate for another node is refused.
	r.Renew = func(_ context.Context, csrPEM []byte) ([]byte, error) {
		certPEM, _, _, err := ca.Sign(csrPEM, Identity{NodeID: "n2"}, time.Now(), time.Hour)
		return certPEM, err
	}
	if err := r.RenewNow(context.Background()); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("renewed into another node: %v", err)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
