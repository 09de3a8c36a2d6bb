package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
)

// NewKeyAndCSR makes a fresh ECDSA P-256 key and a certificate request for
// id, both in PEM. The request's names are informative only: the CA signs
// the identity its own caller gives (see CA.Sign).
func NewKeyAndCSR(id Identity) (keyPEM, csrPEM []byte, err error) {
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: id.NodeID},
		IPAddresses: cloneIPs(id.IPs),
		DNSNames:    append([]string(nil), id.DNSNames...),
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request for %s: %w", id.NodeID, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

func cloneIPs(ips []net.IP) []net.IP {
	out := make([]net.IP, 0, len(ips))
	for _, ip := range ips {
		out = append(out, append(net.IP(nil), ip...))
	}
	return out
}
