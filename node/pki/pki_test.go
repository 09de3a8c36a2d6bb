package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCARoundTripAndFingerprint(t *testing.T) {
	now := time.Now()
	ca, keyPEM, err := NewCA("c1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if again.ClusterID() != "c1" || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("parsed CA differs: %s", again.ClusterID())
	}
	fp, err := Fingerprint(ca.CertPEM())
	if err != nil || !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
		t.Fatalf("fingerprint %q, %v", fp, err)
	}
	other, otherKey, _ := NewCA("c1", now, time.Hour)
	if fp2, _ := Fingerprint(other.CertPEM()); fp2 == fp {
		t.Fatal("two CAs share a fingerprint")
	}
	if _, err := ParseCA(ca.CertPEM(), otherKey); !errors.Is(err, ErrNotCA) {
		t.Fatalf("a foreign key was accepted: %v", err)
	}
	if _, _, err := NewCA("bad id/", now, 0); err == nil {
		t.Fatal("a cluster id with a slash was accepted")
	}
	// A node certificate is not a CA.
	n := issue(t, ca, "n1", now, time.Hour)
	if _, err := ParseCA(n.CertPEM(), keyPEM); !errors.Is(err, ErrNotCA) {
		t.Fatalf("node certificate accepted as CA: %v", err)
	}
	if _, err := Fingerprint([]byte("junk")); err == nil {
		t.Fatal("fingerprint of junk")
	}
}

func TestSignDecidesTheIdentity(t *testing.T) {
	ca := testCA(t)
	// The request asks for another name and address: the CA ignores both.
	keyPEM, csrPEM, err := NewKeyAndCSR(Identity{NodeID: "leader", IPs: []net.IP{net.IPv4(10, 0, 0, 1)}, DNSNames: []string{"evil.example"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	certPEM, serial, notAfter, err := ca.Sign(csrPEM, Identity{NodeID: "n7", IPs: []net.IP{net.IPv4(10, 1, 2, 3)}}, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := IdentityOf(cert); err != nil || id != "n7" {
		t.Fatalf("identity %q, %v", id, err)
	}
	if cl, _ := ClusterOf(cert); cl != "test-cluster" {
		t.Fatalf("cluster %q", cl)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(10, 1, 2, 3)) || len(cert.DNSNames) != 0 {
		t.Fatalf("names %v %v", cert.IPAddresses, cert.DNSNames)
	}
	if SerialOf(cert) != serial || !cert.NotAfter.Equal(notAfter) {
		t.Fatalf("serial %s/%s, not after %v/%v", SerialOf(cert), serial, cert.NotAfter, notAfter)
	}
	if d := notAfter.Sub(now); d < DefaultNodeCertValidity-time.Second || d > DefaultNodeCertValidity {
		t.Fatalf("validity %v", d)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || cert.IsCA {
		t.Fatalf("usages %v, CA %v", cert.ExtKeyUsage, cert.IsCA)
	}
	if _, err := NewCredentials(certPEM, keyPEM, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	// A request whose signature does not hold is refused, as is junk and a bad id.
	bad := []byte(strings.Replace(string(csrPEM), "A", "B", 1))
	if _, _, _, err := ca.Sign(bad, Identity{NodeID: "n7"}, now, 0); err == nil {
		t.Fatal("a damaged request was signed")
	}
	if _, _, _, err := ca.Sign(csrPEM, Identity{NodeID: "N_7"}, now, 0); err == nil {
		t.Fatal("a bad node id was signed")
	}
	// Never past the CA's own expiry.
	short, _, _ := NewCA("c2", now, time.Hour)
	_, _, na, err := short.Sign(csrPEM, Identity{NodeID: "n7"}, now, 0)
	if err != nil || na.After(short.Certificate().NotAfter) {
		t.Fatalf("not after %v past the CA's %v (%v)", na, short.Certificate().NotAfter, err)
	}
}

func TestHandshakes(t *testing.T) {
	ca := testCA(t)
	now := time.Now()
	server := issue(t, ca, "n1", now, time.Hour)
	client := issue(t, ca, "n2", now, time.Hour)
	revokedCreds := issue(t, ca, "n3", now, time.Hour)
	expired := issue(t, ca, "n4", now.Add(-48*time.Hour), time.Hour)
	foreign := issue(t, testCA(t), "n2", now, time.Hour)
	v := &Verifier{Roots: ca.Pool(), ClusterID: "test-cluster", Revoked: func(s string) bool { return s == revokedCreds.Serial() }}
	required := ServerConfig(server, v, tls.RequireAndVerifyClientCert)

	t.Run("valid peers", func(t *testing.T) {
		r := handshake(t, required, ClientConfig(client, v, "n1"), v)
		if r.serverErr != nil || r.clientErr != nil || r.serverSawPeer != "n2" {
			t.Fatalf("%+v", r)
		}
		r = handshake(t, required, ClientConfig(client, v, ""), v)
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("any node: %+v", r)
		}
	})
	for _, tc := range []struct {
		name  string
		creds *Credentials
		want  error // what the server says; nil: only that it refused
	}{
		{"no certificate", nil, nil},
		{"another CA", foreign, nil},
		{"expired", expired, nil},
		{"revoked", revokedCreds, ErrRevoked},
	} {
		t.Run("client with "+tc.name, func(t *testing.T) {
			r := handshake(t, required, ClientConfig(tc.creds, v, "n1"), v)
			if r.serverErr == nil || r.clientErr == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if tc.want != nil && !errors.Is(r.serverErr, tc.want) {
				t.Fatalf("server error %v, want %v", r.serverErr, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		creds  *Credentials
		expect string
		want   error
	}{
		{"another CA", foreign, "n2", ErrUntrusted},
		{"expired", expired, "n4", ErrUntrusted},
		{"revoked", revokedCreds, "n3", ErrRevoked},
		{"another node id", server, "n9", ErrWrongNode},
	} {
		t.Run("server with "+tc.name, func(t *testing.T) {
			r := handshake(t, ServerConfig(tc.creds, v, tls.RequireAndVerifyClientCert), ClientConfig(client, v, tc.expect), v)
			if r.clientErr == nil || !errors.Is(r.clientErr, tc.want) {
				t.Fatalf("client error %v, want %v", r.clientErr, tc.want)
			}
		})
	}
	t.Run("optional client certificate", func(t *testing.T) {
		optional := ServerConfig(server, v, tls.VerifyClientCertIfGiven)
		if r := handshake(t, optional, ClientConfig(nil, v, "n1"), v); r.serverErr != nil || r.clientErr != nil || r.serverSawPeer != "" {
			t.Fatalf("no certificate: %+v", r)
		}
		if r := handshake(t, optional, ClientConfig(client, v, "n1"), v); r.serverErr != nil || r.serverSawPeer != "n2" {
			t.Fatalf("node certificate: %+v", r)
		}
		for _, bad := range []*Credentials{foreign, expired, revokedCreds} {
			if r := handshake(t, optional, ClientConfig(bad, v, "n1"), v); r.serverErr == nil {
				t.Fatalf("a bad certificate %s passed: %+v", bad.NodeID(), r)
			}
		}
	})
	t.Run("TLS 1.2 refused", func(t *testing.T) {
		cfg := ClientConfig(client, v, "n1")
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if r := handshake(t, required, cfg, v); r.serverErr == nil || r.clientErr == nil {
			t.Fatalf("TLS 1.2 accepted: %+v", r)
		}
	})
}

func TestVerifyPeerFrom(t *testing.T) {
	ca := testCA(t)
	c := issue(t, ca, "n1", time.Now(), time.Hour)
	v := &Verifier{Roots: ca.Pool()}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf()}}
	if id, err := v.VerifyPeerFrom(&net.TCPAddr{IP: loopback, Port: 4000}, cs); err != nil || id != "n1" {
		t.Fatalf("%q, %v", id, err)
	}
	if _, err := v.VerifyPeerFrom(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4000}, cs); !errors.Is(err, ErrWrongAddress) {
		t.Fatalf("another address: %v", err)
	}
	if _, err := v.VerifyPeer(tls.ConnectionState{}); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("no certificate: %v", err)
	}
	// The CA certificate itself names no node.
	if _, err := v.VerifyCertificate(ca.Certificate(), nil); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("CA as a node: %v", err)
	}
	if _, err := (&Verifier{Roots: ca.Pool(), ClusterID: "other"}).VerifyPeer(cs); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("another cluster id: %v", err)
	}
}

func TestCredentialsSaveLoadSwap(t *testing.T) {
	ca := testCA(t)
	dir := filepath.Join(t.TempDir(), "tls")
	if _, err := LoadCredentials(dir); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("empty dir: %v", err)
	}
	c := issue(t, ca, "n1", time.Now(), time.Hour)
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{NodeFile, CAFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	loaded, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Serial() != c.Serial() || loaded.NodeID() != "n1" || !loaded.NotAfter().Equal(c.NotAfter()) {
		t.Fatalf("loaded %s %s", loaded.NodeID(), loaded.Serial())
	}
	// Another node's certificate, another CA's, or a key that does not match: refused, nothing changes.
	other := issue(t, ca, "n2", time.Now(), time.Hour)
	if err := loaded.Swap(other.CertPEM(), other.keyPEM); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("swap to another node: %v", err)
	}
	foreign := issue(t, testCA(t), "n1", time.Now(), time.Hour)
	if err := loaded.Swap(foreign.CertPEM(), foreign.keyPEM); err == nil {
		t.Fatal("swap to another CA's certificate")
	}
	older := issue(t, ca, "n1", time.Now().Add(-time.Minute), time.Hour)
	if err := loaded.Swap(older.CertPEM(), older.keyPEM); err == nil {
		t.Fatal("swap to a certificate that expires sooner")
	}
	fresh := issue(t, ca, "n1", time.Now(), time.Hour)
	if err := loaded.Swap(fresh.CertPEM(), c.keyPEM); err == nil {
		t.Fatal("swap with a key that does not match")
	}
	if loaded.Serial() != c.Serial() {
		t.Fatal("a refused swap changed the certificate")
	}
	if err := loaded.Swap(fresh.CertPEM(), fresh.keyPEM); err != nil || loaded.Serial() != fresh.Serial() {
		t.Fatalf("swap: %v", err)
	}
}

func TestNeedsRenewal(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(30 * 24 * time.Hour)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{nb, false}, {nb.Add(19 * 24 * time.Hour), false}, {nb.Add(20 * 24 * time.Hour), true}, {na, true}, {na.Add(time.Hour), true}} {
		if got := NeedsRenewal(nb, na, tc.at); got != tc.want {
			t.Errorf("at %v: %v, want %v", tc.at, got, tc.want)
		}
	}
}
