package raftfsm

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"
)

// OriginCert is the TLS certificate of one DNS zone that every agent's edge
// serves (for example a Cloudflare origin certificate, which Cloudflare's
// proxy trusts): hosts equal to or under Zone get TLS with it. The chain is
// public; the private key is sealed before it enters the log.
type OriginCert struct {
	// Zone is the DNS zone, such as "example.com".
	Zone string `json:"zone"`
	// CertPEM is the certificate chain, PEM encoded, leaf first.
	CertPEM string `json:"cert_pem"`
	// Key is the PEM-encoded private key, sealed under OriginKeyLabel(Zone).
	Key Sealed `json:"key"`
	// NotAfter is when the leaf certificate expires (shown, and read from
	// the certificate by the leader).
	NotAfter  time.Time `json:"not_after"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxOriginCertPEM bounds an origin certificate chain.
const MaxOriginCertPEM = 64 << 10

// OriginKeyLabel is the associated data of a zone's sealed origin key, so a
// key cannot be moved to another zone.
func OriginKeyLabel(zone string) string { return "origin_key:" + zone }

// ParseCertChain decodes a PEM certificate chain and returns its leaf.
func ParseCertChain(chain string) (*x509.Certificate, error) {
	if chain == "" || len(chain) > MaxOriginCertPEM {
		return nil, invalidf("certificate: want 1 byte to %d KiB of PEM", MaxOriginCertPEM>>10)
	}
	block, _ := pem.Decode([]byte(chain))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, invalidf("certificate: no PEM CERTIFICATE block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, invalidf("certificate: %v", err)
	}
	return leaf, nil
}

func applyPutOriginCert(s *State, c *PutOriginCert) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	oc := c.Cert
	if err := ValidateHostname(oc.Zone, false); err != nil {
		return nil, fmt.Errorf("origin certificate zone: %w", err)
	}
	leaf, err := ParseCertChain(oc.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("origin certificate of %s: %w", oc.Zone, err)
	}
	if !oc.Key.Valid() {
		return nil, invalidf("origin certificate of %s: the key is not sealed", oc.Zone)
	}
	oc.NotAfter, oc.UpdatedAt = leaf.NotAfter.UTC(), c.At
	s.OriginCerts[oc.Zone] = &oc
	return nil, nil
}

func applyDeleteOriginCert(s *State, c *DeleteOriginCert) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.OriginCerts[c.Zone]; !ok {
		return nil, fmt.Errorf("origin certificate of %s: %w", c.Zone, ErrNotFound)
	}
	delete(s.OriginCerts, c.Zone)
	return nil, nil
}
