package edge

// Test helpers: backends standing in for containers, clients that talk to an
// edge by Host header, a raw websocket handshake, self-signed zone
// certificates, a log capture, and (testkit.WaitFor does the waiting).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logCapture is an slog handler that keeps every line in memory, shown in
// the test log only if the test fails (t.Log from a server goroutine after
// the test ends would panic).
type logCapture struct {
	mu    *sync.Mutex
	buf   *bytes.Buffer
	inner slog.Handler
}

func newLogCapture(t testing.TB) (*slog.Logger, *logCapture) {
	c := &logCapture{mu: &sync.Mutex{}, buf: &bytes.Buffer{}}
	c.inner = slog.NewTextHandler(lockedWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge log:\n%s", c.String())
		}
	})
	return slog.New(c), c
}

type lockedWriter struct{ c *logCapture }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.buf.Len() > 4<<20 { // keep memory bounded under load tests
		return len(p), nil
	}
	return w.c.buf.Write(p)
}

func (c *logCapture) Enabled(ctx context.Context, l slog.Level) bool  { return c.inner.Enabled(ctx, l) }
func (c *logCapture) Handle(ctx context.Context, r slog.Record) error { return c.inner.Handle(ctx, r) }
func (c *logCapture) WithAttrs(a []slog.Attr) slog.Handler {
	return &logCapture{mu: c.mu, buf: c.buf, inner: c.inner.WithAttrs(a)}
}
func (c *logCapture) WithGroup(n string) slog.Handler {
	return &logCapture{mu: c.mu, buf: c.buf, inner: c.inner.WithGroup(n)}
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// backend is a stand-in container: an HTTP server on 127.0.0.1.
//
//	/       answers its name
//	/slow   answers its name after 200 ms
//	/block  answers its name once the test calls release
//	/body   reads the body and answers its length
//	/ws     websocket handshake, then echoes bytes
type backend struct {
	name     string
	srv      *httptest.Server
	hits     atomic.Int64
	inflight atomic.Int64
	blocked  atomic.Int64
	release  chan struct{}
	once     sync.Once
	conns    atomic.Int64 // connections accepted

	mu   sync.Mutex
	last http.Header // headers of the last request, Host included
}

func newBackend(t testing.TB, name string) *backend {
	b := &backend{name: name, release: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.close)
	return b
}

// addr is the backend's "ip:port".
func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

// close releases blocked requests and stops the server (waiting for
// requests in flight).
func (b *backend) close() {
	b.unblock()
	b.srv.Close()
}

func (b *backend) unblock() { b.once.Do(func() { close(b.release) }) }

func (b *backend) lastHeaders() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last.Clone()
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	b.mu.Lock()
	b.last = h
	b.mu.Unlock()
	switch r.URL.Path {
	case "/slow":
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	case "/block":
		b.blocked.Add(1)
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
	case "/body":
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
		return
	case "/ws":
		b.serveWebsocket(w, r)
		return
	}
	fmt.Fprint(w, b.name)
}

// serveWebsocket completes a websocket handshake and echoes raw bytes (no
// framing needed: the edge only has to pump the upgraded connection).
func (b *backend) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") {
		http.Error(w, "not an upgrade: Upgrade="+r.Header.Get("Upgrade")+" Connection="+r.Header.Get("Connection"), http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	if brw.Flush() != nil {
		return
	}
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := brw.WriteString(b.name + ":" + line); err != nil || brw.Flush() != nil {
			return
		}
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func wsAccept(key string) string {
	s := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(s[:])
}

// wsDial opens a websocket through the edge at addr for host and returns
// the upgraded connection.
func wsDial(t testing.TB, addr, host string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("dropmesh-edge-16"))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host, key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("websocket handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("websocket handshake: status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		t.Fatalf("websocket handshake: accept %q, want %q", got, wsAccept(key))
	}
	return conn, br
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on (a
// connection to it is refused).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// client talks to an edge: every request goes to addr whatever the Host.
type client struct {
	addr string
	hc   *http.Client
}

func newClient(t testing.TB, addr string) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{addr: addr, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// do sends one request with the given Host and returns status and body.
func (c *client) do(method, host, path string, body io.Reader, size int64, hdr http.Header) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+c.addr+path, body)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// get sends a GET and fails the test on a transport error.
func (c *client) get(t testing.TB, host, path string) (int, string) {
	t.Helper()
	code, body, err := c.do(http.MethodGet, host, path, nil, 0, nil)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return code, body
}

// expect GETs host/path and checks status and body.
func (c *client) expect(t testing.TB, host, path string, wantCode int, wantBody string) {
	t.Helper()
	code, body := c.get(t, host, path)
	if code != wantCode || (wantBody != "" && body != wantBody) {
		t.Fatalf("GET %s%s = %d %q, want %d %q", host, path, code, body, wantCode, wantBody)
	}
}

// selfSignedZone makes a self-signed certificate for zone and *.zone, as an
// origin certificate would be, and a pool that trusts it.
func selfSignedZone(t testing.TB, zone string) (Cert, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: zone},
		DNSNames:              []string{zone, "*." + zone},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{
		Zone:    zone,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return c, pool
}

// tlsGet sends a GET over TLS to addr with the given SNI name and Host.
func tlsGet(addr, sni, host string, pool *x509.CertPool) (int, string, http.Header, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: pool},
		Proxy:           nil,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// routeTo builds a one-host route for a test service.
func routeTo(host, service string, backends ...*backend) Route {
	r := Route{Host: host, Service: "9fe5e6/shop/prod/" + service}
	for _, b := range backends {
		r.Upstreams = append(r.Upstreams, b.addr())
	}
	return r
}
