package raftfsm

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/pki"
)

// testPKI is a cluster CA for raft tests, with a revocation list.
type testPKI struct {
	t  testing.TB
	ca *pki.CA

	mu      sync.Mutex
	revoked map[string]bool
	refused int // handshakes that presented a revoked certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, _, err := pki.NewCA("test-cluster", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca, revoked: map[string]bool{}}
}

// issue makes credentials naming nodeID at ip, signed at signedAt.
func (p *testPKI) issue(nodeID string, ip net.IP, signedAt time.Time, validity time.Duration) *pki.Credentials {
	p.t.Helper()
	return issueFrom(p.t, p.ca, nodeID, ip, signedAt, validity)
}

func issueFrom(t testing.TB, ca *pki.CA, nodeID string, ip net.IP, signedAt time.Time, validity time.Duration) *pki.Credentials {
	t.Helper()
	id := pki.Identity{NodeID: nodeID, IPs: []net.IP{ip}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, signedAt, validity)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *testPKI) revoke(serial string) {
	p.mu.Lock()
	p.revoked[serial] = true
	p.mu.Unlock()
}

// refusals counts the handshakes refused for a revoked certificate.
func (p *testPKI) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *testPKI) verifier() *pki.Verifier {
	return &pki.Verifier{Roots: p.ca.Pool(), ClusterID: p.ca.ClusterID(), Revoked: func(s string) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.revoked[s] {
			p.refused++
		}
		return p.revoked[s]
	}}
}

// raftTLS is what node gives raftfsm: its credentials behind the cluster's checks.
func (p *testPKI) raftTLS(creds *pki.Credentials) *RaftTLS {
	v := p.verifier()
	return &RaftTLS{
		Server: pki.ServerConfig(creds, v, tls.RequireAndVerifyClientCert),
		Client: pki.ClientConfig(creds, v, ""),
		PeerID: v.VerifyPeerFrom,
	}
}

// node issues a certificate for a test node on 127.0.0.1 and returns its raft TLS.
func (p *testPKI) node(id string) *RaftTLS {
	return p.raftTLS(p.issue(id, net.IPv4(127, 0, 0, 1), time.Now(), time.Hour))
}
