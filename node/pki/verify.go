package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Errors a connection check ends with; callers branch on them (to raise an
// event, to answer 401 rather than 403).
var (
	// ErrNoCertificate means the peer presented no certificate.
	ErrNoCertificate = errors.New("peer presented no certificate")
	// ErrUntrusted means the certificate does not chain to the cluster CA at
	// the verifier's time (another CA, expired, not yet valid, wrong usage).
	ErrUntrusted = errors.New("certificate not trusted")
	// ErrRevoked means the certificate's serial is revoked.
	ErrRevoked = errors.New("certificate revoked")
	// ErrWrongNode means a valid certificate names another node than the one
	// expected.
	ErrWrongNode = errors.New("certificate names another node")
	// ErrWrongAddress means the connection comes from an address the
	// certificate does not name.
	ErrWrongAddress = errors.New("connection from an address the certificate does not name")
)

// Verifier checks a peer's certificate: it chains to Roots at Now, carries
// both server and client auth usages, names a node (of ClusterID, when set)
// and is not Revoked. The zero values of Revoked and Now mean "nothing is
// revoked" and time.Now.
type Verifier struct {
	Roots     *x509.CertPool
	ClusterID string
	Revoked   func(serial string) bool
	Now       func() time.Time
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyPeer checks the certificate a TLS peer presented and returns the
// node id it names.
func (v *Verifier) VerifyPeer(cs tls.ConnectionState) (nodeID string, err error) {
	if len(cs.PeerCertificates) == 0 {
		return "", ErrNoCertificate
	}
	return v.VerifyCertificate(cs.PeerCertificates[0], cs.PeerCertificates[1:])
}

// VerifyPeerFrom is VerifyPeer plus a check that remote, the connection's
// source (or dialled) address, is one of the certificate's IP addresses: a
// node's certificate is not usable from another machine's address.
func (v *Verifier) VerifyPeerFrom(remote net.Addr, cs tls.ConnectionState) (nodeID string, err error) {
	nodeID, err = v.VerifyPeer(cs)
	if err != nil {
		return "", err
	}
	ip := addrIP(remote)
	if ip == nil || !slices.ContainsFunc(cs.PeerCertificates[0].IPAddresses, ip.Equal) {
		return "", fmt.Errorf("%w: node %s from %v", ErrWrongAddress, nodeID, remote)
	}
	return nodeID, nil
}

// VerifyCertificate checks a leaf certificate (with any intermediates the
// peer sent) and returns the node id it names.
func (v *Verifier) VerifyCertificate(leaf *x509.Certificate, intermediates []*x509.Certificate) (nodeID string, err error) {
	if v.Roots == nil {
		return "", fmt.Errorf("%w: no cluster CA configured", ErrUntrusted)
	}
	opts := x509.VerifyOptions{
		Roots:       v.Roots,
		CurrentTime: v.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(intermediates) > 0 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range intermediates {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("%w: not a node certificate (usages)", ErrUntrusted)
	}
	clusterID, nodeID, err := parseNodeURIs(leaf.URIs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if v.ClusterID != "" && clusterID != v.ClusterID {
		return "", fmt.Errorf("%w: certificate of cluster %q", ErrUntrusted, clusterID)
	}
	if serial := SerialOf(leaf); v.Revoked != nil && v.Revoked(serial) {
		return "", fmt.Errorf("%w: node %s serial %s", ErrRevoked, nodeID, serial)
	}
	return nodeID, nil
}

// ServerConfig is the TLS configuration of a listener that presents creds'
// certificate. clientAuth says whether a client certificate is required
// (tls.RequireAndVerifyClientCert: raft, internal calls) or checked when
// given (tls.VerifyClientCertIfGiven: the public API, where people use API
// keys). A client certificate, when present, passes v; handlers learn the
// node with v.VerifyPeer(*r.TLS).
func ServerConfig(creds *Credentials, v *Verifier, clientAuth tls.ClientAuthType) *tls.Config {
	required := clientAuth == tls.RequireAnyClientCert || clientAuth == tls.RequireAndVerifyClientCert
	if clientAuth == tls.RequireAnyClientCert {
		clientAuth = tls.RequireAndVerifyClientCert // never accept a certificate unchecked
	}
	if clientAuth == tls.RequestClientCert {
		clientAuth = tls.VerifyClientCertIfGiven
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: creds.GetCertificate,
		ClientAuth:     clientAuth,
		ClientCAs:      v.Roots,
		Time:           v.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 && !required {
				return nil
			}
			_, err := v.VerifyPeer(cs)
			return err
		},
	}
}

// ClientConfig is the TLS configuration for dialling a dropmesh server:
// the server must present a valid node certificate, naming expectNodeID
// unless that is empty (any node of the cluster). creds, when not nil, is
// the client certificate this side presents; a CLI has none.
//
// The standard host name check is off on purpose: it would tie the peer to
// the address dialled, while a node is who its certificate names; the chain,
// time, usage, revocation and node id are checked in VerifyConnection, on
// every handshake.
func ClientConfig(creds *Credentials, v *Verifier, expectNodeID string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verification is VerifyConnection's, below
		Time:               v.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := v.VerifyPeer(cs)
			if err != nil {
				return err
			}
			if expectNodeID != "" && id != expectNodeID {
				return fmt.Errorf("%w: want %s, got %s", ErrWrongNode, expectNodeID, id)
			}
			return nil
		},
	}
	if creds != nil {
		cfg.GetClientCertificate = creds.GetClientCertificate
	}
	return cfg
}

// addrIP is the IP of a TCP or UDP address (nil for others).
func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	case nil:
		return nil
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}
