package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/atomicfile"
)

// File names of a node's credentials in its directory. The node file holds
// the certificate and the key together, so a crash during renewal can never
// leave a certificate beside another certificate's key.
const (
	NodeFile = "node.pem"
	CAFile   = "ca.crt"
)

// ErrNoCredentials means the directory holds no credentials yet (the node
// has not enrolled).
var ErrNoCredentials = errors.New("no node credentials")

// Credentials are this node's key and certificate and the cluster CA's
// certificate. The certificate can be replaced while listeners and clients
// use it (GetCertificate, GetClientCertificate read the current one), so
// renewal needs no restart. Safe for concurrent use.
type Credentials struct {
	caPEM []byte
	ca    *x509.Certificate

	mu      sync.RWMutex
	tlsCert *tls.Certificate
	certPEM []byte
	keyPEM  []byte
}

// NewCredentials checks that certPEM is a node certificate signed by the CA
// in caPEM, for the key in keyPEM, and holds them.
func NewCredentials(certPEM, keyPEM, caPEM []byte) (*Credentials, error) {
	ca, err := ParseCertificate(caPEM)
	if err != nil {
		return nil, fmt.Errorf("credentials: CA: %w", err)
	}
	if _, err := caClusterID(ca); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	c := &Credentials{caPEM: encodeCert(ca.Raw), ca: ca}
	if err := c.Swap(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadCredentials reads credentials saved in dir with Save. A directory
// without them gives ErrNoCredentials.
func LoadCredentials(dir string) (*Credentials, error) {
	node, err := os.ReadFile(filepath.Join(dir, NodeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoCredentials, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	certPEM, keyPEM := splitPEM(node)
	c, err := NewCredentials(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("load credentials from %s: %w", dir, err)
	}
	return c, nil
}

// Save writes the credentials into dir (created 0700 if missing), each file
// 0600 and replaced atomically.
func (c *Credentials) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	c.mu.RLock()
	node := append(append([]byte(nil), c.certPEM...), c.keyPEM...)
	c.mu.RUnlock()
	if err := atomicfile.Write(filepath.Join(dir, CAFile), c.caPEM, 0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, NodeFile), node, 0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// Swap replaces the certificate and key. The new certificate must be signed
// by the same CA, match the key, name the same node as the current one
// (renewal never changes who a node is) and expire no earlier (an old
// certificate is never put back). On error nothing changes.
func (c *Credentials) Swap(certPEM, keyPEM []byte) error {
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	leaf := tc.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(tc.Certificate[0]); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		tc.Leaf = leaf
	}
	if err := leaf.CheckSignatureFrom(c.ca); err != nil {
		return fmt.Errorf("credentials: certificate not signed by the cluster CA: %w", err)
	}
	nodeID, err := IdentityOf(leaf)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tlsCert != nil {
		if old, _ := IdentityOf(c.tlsCert.Leaf); old != nodeID {
			return fmt.Errorf("credentials: %w: %s replaced by %s", ErrWrongNode, old, nodeID)
		}
		if leaf.NotAfter.Before(c.tlsCert.Leaf.NotAfter) {
			return fmt.Errorf("credentials: the new certificate expires at %s, before the current one (%s)",
				leaf.NotAfter.Format(time.RFC3339), c.tlsCert.Leaf.NotAfter.Format(time.RFC3339))
		}
	}
	c.tlsCert = &tc
	c.certPEM = append([]byte(nil), certPEM...)
	c.keyPEM = append([]byte(nil), keyPEM...)
	return nil
}

// GetCertificate gives a server the current certificate (tls.Config hook).
func (c *Credentials) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current(), nil
}

// GetClientCertificate gives a client the current certificate (tls.Config
// hook).
func (c *Credentials) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.current(), nil
}

func (c *Credentials) current() *tls.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tlsCert
}

// Leaf is the current certificate, parsed.
func (c *Credentials) Leaf() *x509.Certificate { return c.current().Leaf }

// NodeID is the node the certificate names.
func (c *Credentials) NodeID() string {
	id, _ := IdentityOf(c.Leaf()) // checked by Swap
	return id
}

// Identity is what the current certificate names (for the next request).
func (c *Credentials) Identity() Identity {
	leaf := c.Leaf()
	return Identity{NodeID: c.NodeID(), IPs: cloneIPs(leaf.IPAddresses), DNSNames: append([]string(nil), leaf.DNSNames...)}
}

// NotBefore is when the current certificate became valid.
func (c *Credentials) NotBefore() time.Time { return c.Leaf().NotBefore }

// NotAfter is when the current certificate expires.
func (c *Credentials) NotAfter() time.Time { return c.Leaf().NotAfter }

// Serial is the current certificate's serial (see SerialOf).
func (c *Credentials) Serial() string { return SerialOf(c.Leaf()) }

// CertPEM is the current certificate in PEM.
func (c *Credentials) CertPEM() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]byte(nil), c.certPEM...)
}

// CAPEM is the cluster CA's certificate in PEM.
func (c *Credentials) CAPEM() []byte { return append([]byte(nil), c.caPEM...) }

// CA is the cluster CA's certificate.
func (c *Credentials) CA() *x509.Certificate { return c.ca }

// Pool is a certificate pool holding only the cluster CA, for a Verifier.
func (c *Credentials) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.ca)
	return p
}

// splitPEM separates the certificate blocks from the key block.
func splitPEM(data []byte) (certPEM, keyPEM []byte) {
	var certs, key bytes.Buffer
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == pemCert {
			_ = pem.Encode(&certs, block)
		} else {
			_ = pem.Encode(&key, block)
		}
	}
	return certs.Bytes(), key.Bytes()
}
