package api

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/pki"
)

// The API's tests run over TLS as agents do: every test server presents a
// node certificate from one test cluster CA, agents' clients (forwarding,
// proxying) present theirs, and "CLI" clients verify the CA and present
// none.

// testPKI is a cluster CA for the tests, with a revocation list they can
// change.
type testPKI struct {
	ca       *pki.CA
	verifier *pki.Verifier

	mu      sync.Mutex
	revoked map[string]bool
	creds   map[string]*pki.Credentials
}

// testCluster is the CA every test server of this package shares (made
// once: a CA is a key generation).
var testCluster = sync.OnceValue(func() *testPKI {
	p := &testPKI{revoked: map[string]bool{}, creds: map[string]*pki.Credentials{}}
	ca, _, err := pki.NewCA("api-test", time.Now(), 0)
	if err != nil {
		panic(err)
	}
	p.ca = ca
	p.verifier = &pki.Verifier{Roots: ca.Pool(), ClusterID: "api-test", Revoked: p.isRevoked}
	return p
})

func (p *testPKI) isRevoked(serial string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revoked[serial]
}

func (p *testPKI) revoke(serial string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[serial] = true
}

// signed makes fresh credentials for nodeID on 127.0.0.1, signed by ca.
func signed(t testing.TB, ca *pki.CA, nodeID string, validity time.Duration) *pki.Credentials {
	t.Helper()
	id := pki.Identity{NodeID: nodeID, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, time.Now(), validity)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// node returns nodeID's credentials (one certificate per node id).
func (p *testPKI) node(t testing.TB, nodeID string) *pki.Credentials {
	t.Helper()
	p.mu.Lock()
	c, ok := p.creds[nodeID]
	p.mu.Unlock()
	if ok {
		return c
	}
	c = signed(t, p.ca, nodeID, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.creds[nodeID]; ok {
		return old
	}
	p.creds[nodeID] = c
	return c
}

// serverTLS is the TLS of nodeID's API: its certificate, client
// certificates checked when given.
func (p *testPKI) serverTLS(t testing.TB, nodeID string) *tls.Config {
	creds := p.node(t, nodeID)
	cfg := pki.ServerConfig(creds, p.verifier, tls.VerifyClientCertIfGiven)
	cert, err := creds.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// httptest's StartTLS wants a certificate in the list.
	cfg.GetCertificate, cfg.Certificates = nil, []tls.Certificate{*cert}
	return cfg
}

// agentClient is an HTTP client that presents creds (an agent's).
func (p *testPKI) agentClient(creds *pki.Credentials) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pki.ClientConfig(creds, p.verifier, "")
	return &http.Client{Transport: tr}
}

// cliClient verifies the agents against the CA and presents nothing, as the
// CLI does with DROPMESH_CACERT.
func (p *testPKI) cliClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	return &http.Client{Transport: tr}
}

// newTLSServer serves h over TLS as nodeID's API, on 127.0.0.1.
func newTLSServer(t testing.TB, h http.Handler, nodeID string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = testCluster().serverTLS(t, nodeID)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// cli is the client of a person with the API key and the CA certificate.
func cli() *http.Client { return testCluster().cliClient() }
