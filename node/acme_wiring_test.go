package node

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestIssuedCertsForTheEdge: an issued certificate becomes one edge
// certificate per host; a host an uploaded origin certificate covers keeps
// the uploaded one; a name two certificates claim goes to the first; the
// opened key is reused while the issuance is the same.
func TestIssuedCertsForTheEdge(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{9}, 32))
	aead, _ := cipher.NewGCM(block)
	a := &Agent{keys: clusterconf.Keys{Sealer: aead}, logger: slog.New(slog.DiscardHandler)}
	crt, err := os.ReadFile("edge/testdata/example.test.crt")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("edge/testdata/example.test.key")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, hosts ...string) raftfsm.IssuedCert {
		sealed, err := raftfsm.Seal(aead, raftfsm.IssuedKeyLabel(name), key)
		if err != nil {
			t.Fatal(err)
		}
		return raftfsm.IssuedCert{Name: name, Hosts: hosts, CertPEM: string(crt), Key: sealed, IssuedAt: time.Unix(100, 0), Status: raftfsm.CertValid}
	}
	issued := []raftfsm.IssuedCert{
		issue("svc:ws/p/e/web", "web.example.test", "www.example.test"),
		issue("svc:ws/p/e/shop", "shop.other.test", "www.example.test"),
		issue("zone:other.test", "*.other.test", "other.test"),
		{Name: "svc:ws/p/e/broken", Hosts: []string{"broken.example.test"}, CertPEM: string(crt), Key: "v1:AAAA", IssuedAt: time.Unix(1, 0)},
	}
	uploaded := []edge.Cert{{Zone: "shop.other.test", CertPEM: crt, KeyPEM: key}}
	var c issuedCertCache
	got := c.edgeCerts(a, issued, uploaded)
	var names []string
	for _, ec := range got {
		names = append(names, ec.Zone)
		if !bytes.Equal(ec.KeyPEM, key) {
			t.Fatalf("%s: key not opened", ec.Zone)
		}
	}
	if want := []string{"web.example.test", "www.example.test", "other.test"}; !slices.Equal(names, want) {
		t.Fatalf("edge certificates %v, want %v", names, want)
	}
	// The combined list passes the edge's own validation (no name twice).
	if err := edge.Validate(edge.Config{Certs: append(uploaded, got...)}); err != nil {
		t.Fatal(err)
	}
	again := c.edgeCerts(a, issued, uploaded)
	if len(again) != len(got) || &again[0].KeyPEM[0] != &got[0].KeyPEM[0] {
		t.Fatal("the key was opened again for the same issuance")
	}
}

func TestRedirectsOnlyForIssuedHosts(t *testing.T) {
	crt, err := os.ReadFile("edge/testdata/example.test.crt") // example.test and *.example.test
	if err != nil {
		t.Fatal(err)
	}
	routes := []edge.Route{
		{Host: "web.example.test", RedirectHTTPS: true},  // under the issued wildcard
		{Host: "shop.other.test", RedirectHTTPS: true},   // exact issued name
		{Host: "origin.third.test", RedirectHTTPS: true}, // uploaded only
		{Host: "off.other.test", RedirectHTTPS: false},   // switched off
	}
	issued := []edge.Cert{{Zone: "example.test", CertPEM: crt}, {Zone: "shop.other.test", CertPEM: crt}, {Zone: "off.other.test", CertPEM: crt}}
	keepRedirects(routes, issued)
	want := []bool{true, true, false, false}
	for i, r := range routes {
		if r.RedirectHTTPS != want[i] {
			t.Errorf("%s: redirect %v, want %v", r.Host, r.RedirectHTTPS, want[i])
		}
	}
}
