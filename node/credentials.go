package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// This node's identity: its key and certificate from the cluster CA, kept in
// DATA_DIR/tls (pki.Credentials), and the checks every connection between
// dropmesh processes runs (pki.Verifier over the replicated revocations).
//
// The seed makes the cluster CA on its first start, signs its own
// certificate, and keeps the CA key in DATA_DIR/tls/ca-key.pem only until the
// cluster's initialisation has committed it, sealed, to the replicated state
// (initCluster); from then on the key lives only there, and the leader
// unseals it to sign. Every other node enrolls once with a join token
// (Enroll) and renews its certificate on its own (renew.go).

// pendingCAKeyFile holds the seed's CA key until initCluster has sealed it
// into the state.
const pendingCAKeyFile = "ca-key.pem"

// tlsDir is this node's credentials directory.
func (c *Config) tlsDir() string { return filepath.Join(c.DataDir, clusterconf.TLSDir) }

// ErrNotEnrolled means a node has no certificate and no way to get one.
var ErrNotEnrolled = errors.New("this node has no certificate of the cluster CA")

// loadCredentials loads this node's credentials; the seed makes the CA and
// its own certificate on its first start.
func (a *Agent) loadCredentials() error {
	dir := a.cfg.tlsDir()
	creds, err := pki.LoadCredentials(dir)
	switch {
	case err == nil:
	case errors.Is(err, pki.ErrNoCredentials) && a.cfg.Bootstrap:
		if creds, err = a.makeSeedCredentials(); err != nil {
			return err
		}
	case errors.Is(err, pki.ErrNoCredentials):
		return fmt.Errorf("%w (nothing in %s): give a join token and the CA fingerprint (--join-token, --ca-fingerprint; `dropmesh join-token create` makes one), or --bootstrap for a new cluster", ErrNotEnrolled, dir)
	default:
		return err
	}
	if id := creds.NodeID(); id != a.cfg.NodeID {
		return fmt.Errorf("the certificate in %s names node %s, but this node runs as %s", dir, id, a.cfg.NodeID)
	}
	clusterID, err := pki.ClusterOf(creds.Leaf())
	if err != nil {
		return fmt.Errorf("the certificate in %s: %w", dir, err)
	}
	a.creds = creds
	a.verifier = &pki.Verifier{Roots: creds.Pool(), ClusterID: clusterID, Revoked: a.revoked}
	return nil
}

// makeSeedCredentials makes the cluster CA and the seed's own certificate.
// The CA key waits in the credentials directory until initCluster commits it.
func (a *Agent) makeSeedCredentials() (*pki.Credentials, error) {
	clusterID := a.cfg.ClusterID
	if clusterID == "" {
		clusterID = randomHex(8)
	}
	now := a.now()
	ca, caKey, err := pki.NewCA(clusterID, now, 0)
	if err != nil {
		return nil, fmt.Errorf("make the cluster CA: %w", err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(a.identity())
	if err != nil {
		return nil, err
	}
	certPEM, _, _, err := ca.Sign(csrPEM, a.identity(), now, a.cfg.CertValidity)
	if err != nil {
		return nil, fmt.Errorf("sign the seed's certificate: %w", err)
	}
	creds, err := pki.NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		return nil, err
	}
	dir := a.cfg.tlsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("credentials dir: %w", err)
	}
	// The key first: credentials without it would be a CA nobody can use.
	if err := atomicfile.Write(filepath.Join(dir, pendingCAKeyFile), caKey, 0o600); err != nil {
		return nil, fmt.Errorf("keep the CA key: %w", err)
	}
	if err := creds.Save(dir); err != nil {
		return nil, err
	}
	a.logger.Info("made the cluster CA and the seed's certificate", "cluster", clusterID, "ca", pki.FingerprintOf(ca.Certificate()))
	return creds, nil
}

// identity is what this node's certificate names: its id and the address
// peers reach it at.
func (a *Agent) identity() pki.Identity {
	return pki.Identity{NodeID: a.cfg.NodeID, IPs: []net.IP{net.ParseIP(a.cfg.AdvertiseIP)}}
}

// ClusterCAPEM is the cluster CA's certificate (PEM), what clients verify
// the API with (DROPMESH_CACERT).
func (a *Agent) ClusterCAPEM() []byte { return a.creds.CAPEM() }

// CAFingerprint pins the cluster CA for joining nodes.
func (a *Agent) CAFingerprint() string { return pki.FingerprintOf(a.creds.CA()) }

// VerifyNode checks a TLS peer's node certificate against the cluster CA
// and the replicated revocations, and returns its node id (the API's
// internal routes use it).
func (a *Agent) VerifyNode(cs tls.ConnectionState) (string, error) { return a.verifier.VerifyPeer(cs) }

// serverTLS is the TLS configuration of the API listener: the node
// certificate, with the CA sent along so a joining node can check it
// against its pinned fingerprint, and client certificates checked when
// given (people use API keys; agents present their node certificate).
func (a *Agent) serverTLS() *tls.Config {
	cfg := pki.ServerConfig(a.creds, a.verifier, tls.VerifyClientCertIfGiven)
	ca := a.creds.CA().Raw
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := a.creds.GetCertificate(hello)
		if err != nil || c == nil {
			return c, err
		}
		chain := *c
		chain.Certificate = append(append([][]byte(nil), c.Certificate...), ca)
		return &chain, nil
	}
	return cfg
}

// raftTLS is raft's mutual TLS: both sides present node certificates, and
// each connection is bound to the node id and address its certificate names.
func (a *Agent) raftTLS() *raftfsm.RaftTLS {
	return &raftfsm.RaftTLS{
		Server: pki.ServerConfig(a.creds, a.verifier, tls.RequireAndVerifyClientCert),
		Client: pki.ClientConfig(a.creds, a.verifier, ""),
		PeerID: a.verifier.VerifyPeerFrom,
	}
}

// newPeerHTTPClient is the HTTP client of every call to another agent:
// this node's certificate as client certificate, the other's checked
// against the CA, dialled from this node's address (the one its
// certificate names). It has no overall timeout: log streams are long.
func (a *Agent) newPeerHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	if ip := net.ParseIP(a.cfg.BindIP); ip != nil && !ip.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.TLSClientConfig = pki.ClientConfig(a.creds, a.verifier, "")
	// Enough idle connections for the writes a follower forwards at once,
	// so that each does not pay a new mutual-TLS handshake to the leader.
	tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 32, time.Minute
	tr.ResponseHeaderTimeout = 0
	return &http.Client{Transport: &certTransport{creds: a.creds, base: tr}}
}

// certTransport keeps a node's connections to its peers on its current
// certificate: a peer checks the certificate of a connection on every
// request (a revocation or an expiry holds on open connections too), so
// after a renewal new requests go over new connections, made with the new
// certificate, while requests in flight finish on the old ones.
type certTransport struct {
	creds *pki.Credentials
	base  *http.Transport

	mu     sync.Mutex
	serial string
	cur    *http.Transport
}

// RoundTrip sends r over connections made with the current certificate.
func (t *certTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.current().RoundTrip(r)
}

func (t *certTransport) current() *http.Transport {
	serial := t.creds.Serial()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur == nil || serial != t.serial {
		if t.cur != nil {
			t.cur.CloseIdleConnections()
		}
		t.cur, t.serial = t.base.Clone(), serial
	}
	return t.cur
}

// CloseIdleConnections closes the idle connections (http.Client calls it).
func (t *certTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != nil {
		t.cur.CloseIdleConnections()
	}
}

// PeerHTTPClient is the client the API forwards and proxies with (mutual
// TLS with this node's certificate).
func (a *Agent) PeerHTTPClient() *http.Client { return a.peerHTTP }

// pinnedTLS is the client TLS of a node that has no CA yet, only its
// fingerprint: the server's chain must include a certificate with that
// fingerprint (the agents' API sends the CA along), and the server's node
// certificate must chain to it.
func pinnedTLS(fingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below, against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if pki.FingerprintOf(c) != fingerprint {
					continue
				}
				pool := x509.NewCertPool()
				pool.AddCert(c)
				v := &pki.Verifier{Roots: pool}
				_, err := v.VerifyPeer(cs)
				return err
			}
			return fmt.Errorf("%w: the agent's certificate chain has no CA with fingerprint %s (--ca-fingerprint)", pki.ErrUntrusted, fingerprint)
		},
	}
}
