// Package pebble runs Let's Encrypt's ACME test CA, Pebble, in-process
// from its Go packages (the wiring of its cmd/pebble: a CA, a memory
// store, a validation authority and the web front end), for tests and for
// local mode's `--acme pebble`. Its validation authority resolves DNS-01
// challenges through a given DNS server: the fake cloud's, which serves
// the records the Cloudflare client wrote. The directory is served over
// HTTPS with a certificate made here; DirectoryCA is its PEM for clients.
package pebble

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Config says where Pebble listens and validates.
type Config struct {
	// Addr is the listen address ("127.0.0.1:0" when empty).
	Addr string
	// Resolver is the DNS server (host:port) DNS-01 challenges are checked
	// against; Pebble asks it over TCP.
	Resolver string
	// Validity is the lifetime of issued certificates; 0 is Pebble's
	// default (90 days). Short lifetimes let tests see renewals.
	Validity time.Duration
	// Logger gets Pebble's log lines (Debug); nil discards them.
	Logger *slog.Logger
}

// CA is a running Pebble.
type CA struct {
	srv         *http.Server
	ln          net.Listener
	dirURL      string
	directoryCA []byte
	rootPEM     []byte
	failing     atomic.Bool
	newOrders   atomic.Int64
	finalizes   atomic.Int64
	done        chan struct{}
}

// Start runs Pebble until Close. Pebble reads PEBBLE_VA_NOSLEEP and its
// other switches from the environment at start: set PEBBLE_VA_NOSLEEP=1
// for validations without its random wait of up to five seconds.
func Start(cfg Config) (*CA, error) {
	if cfg.Resolver == "" {
		return nil, errors.New("pebble: no DNS resolver to validate DNS-01 against")
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	logw := io.Discard
	if cfg.Logger != nil {
		logw = slogWriter{cfg.Logger}
	}
	logger := log.New(logw, "pebble ", 0)
	store := db.NewMemoryStore()
	validity := uint64(0)
	if cfg.Validity > 0 {
		validity = uint64(cfg.Validity / time.Second)
	}
	profiles := map[string]ca.Profile{"default": {Description: "dropmesh test profile", ValidityPeriod: validity}}
	c := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	// The HTTP and TLS-ALPN ports are never used: dropmesh solves DNS-01 only.
	v := va.New(logger, 5002, 5001, false, cfg.Resolver, store)
	w := wfe.New(logger, store, v, c, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pebble: listen %s: %w", addr, err)
	}
	certPEM, tlsCert, err := selfSigned(ln.Addr().(*net.TCPAddr).IP)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("pebble: directory certificate: %w", err)
	}
	p := &CA{ln: ln, directoryCA: certPEM, rootPEM: c.GetRootCert(0).PEM(), done: make(chan struct{}),
		dirURL: "https://" + ln.Addr().String() + wfe.DirectoryPath}
	inner := w.Handler()
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if p.failing.Load() && r.URL.Path != wfe.DirectoryPath && !strings.HasPrefix(r.URL.Path, "/nonce") {
				rw.Header().Set("Content-Type", "application/problem+json")
				rw.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(rw, `{"type":"urn:ietf:params:acme:error:serverInternal","detail":"pebble is made to fail (test switch)","status":503}`)
				return
			}
			sw := &statusWriter{ResponseWriter: rw}
			inner.ServeHTTP(sw, r)
			// Count what the CA did, not what it was asked: Pebble refuses
			// a share of nonces on purpose, and clients retry those.
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/order-plz" && sw.status == http.StatusCreated:
				p.newOrders.Add(1)
			case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/finalize-order/") && sw.status == http.StatusOK:
				p.finalizes.Add(1)
			}
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	go func() {
		defer close(p.done)
		_ = p.srv.ServeTLS(ln, "", "")
	}()
	return p, nil
}

// DirectoryURL is the ACME directory.
func (p *CA) DirectoryURL() string { return p.dirURL }

// DirectoryCA is the PEM certificate the directory is served with: what a
// client trusts to talk to this CA.
func (p *CA) DirectoryCA() []byte { return p.directoryCA }

// RootPEM is the root that issued certificates chain to: what a client of
// the edge trusts (curl --cacert).
func (p *CA) RootPEM() []byte { return p.rootPEM }

// SetFailing makes every ACME request but the directory's answer 503 (or
// back to normal), so tests see a CA outage.
func (p *CA) SetFailing(on bool) { p.failing.Store(on) }

// NewOrders counts the orders the CA made.
func (p *CA) NewOrders() int64 { return p.newOrders.Load() }

// Finalizes counts the orders the CA finalized: one per certificate issued.
func (p *CA) Finalizes() int64 { return p.finalizes.Load() }

// Close stops the server.
func (p *CA) Close() error {
	err := p.srv.Close()
	<-p.done
	return err
}

// selfSigned makes the directory's TLS certificate for ip.
func selfSigned(ip net.IP) ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "pebble directory"},
		IPAddresses: []net.IP{ip}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// slogWriter turns Pebble's log lines into Debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(b)))
	return len(b), nil
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
