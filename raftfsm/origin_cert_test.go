package raftfsm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a certificate chain for names, valid until notAfter.
func selfSigned(t *testing.T, notAfter time.Time, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestOriginCerts(t *testing.T) {
	f := newFixture(t)
	aead := testAEAD(t)
	key, err := Seal(aead, OriginKeyLabel("example.com"), []byte("-----BEGIN PRIVATE KEY-----\n..."))
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	chain := selfSigned(t, expires, "example.com", "*.example.com")
	f.must(&PutOriginCert{At: t0, Cert: OriginCert{Zone: "example.com", CertPEM: chain, Key: key}})
	f.view(func(s *State) {
		oc := s.OriginCerts["example.com"]
		if oc == nil || oc.CertPEM != chain || !oc.NotAfter.Equal(expires) || !oc.UpdatedAt.Equal(t0) {
			t.Fatalf("stored %+v", oc)
		}
		if plain, err := Open(aead, OriginKeyLabel("example.com"), oc.Key); err != nil || !strings.HasPrefix(string(plain), "-----BEGIN") {
			t.Fatalf("key: %q %v", plain, err)
		}
		if _, err := Open(aead, OriginKeyLabel("other.com"), oc.Key); err == nil {
			t.Fatal("a zone's key opens under another zone's label")
		}
	})
	// Bad input is refused and changes nothing.
	for name, oc := range map[string]OriginCert{
		"bad zone":       {Zone: "Example.COM;", CertPEM: chain, Key: key},
		"wildcard zone":  {Zone: "*.example.com", CertPEM: chain, Key: key},
		"no certificate": {Zone: "example.org", Key: key},
		"not PEM":        {Zone: "example.org", CertPEM: "hello", Key: key},
		"not a cert":     {Zone: "example.org", CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), Key: key},
		"plain key":      {Zone: "example.org", CertPEM: chain, Key: Sealed("-----BEGIN PRIVATE KEY-----")},
		"too large":      {Zone: "example.org", CertPEM: chain + strings.Repeat("x", MaxOriginCertPEM), Key: key},
	} {
		if err := f.refuse(&PutOriginCert{At: t0, Cert: oc}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	f.refuse(&PutOriginCert{Cert: OriginCert{Zone: "example.org", CertPEM: chain, Key: key}})
	if err := f.refuse(&DeleteOriginCert{At: t0, Zone: "example.org"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete a zone without a certificate: %v", err)
	}
	f.must(&DeleteOriginCert{At: t0, Zone: "example.com"})
	f.view(func(s *State) {
		if len(s.OriginCerts) != 0 {
			t.Fatalf("after delete: %v", s.OriginCerts)
		}
	})
}
