package raftfsm

import (
	"strings"
	"testing"
	"time"
)

// TestACMELifecycle: config, account, an order intent that blocks a second
// one for the same certificate, placement, success (the chain is served),
// a failed renewal that keeps the chain and raises the event, deletion.
func TestACMELifecycle(t *testing.T) {
	f := newFixture(t)
	aead := testAEAD(t)
	f.must(&SetACMEConfig{At: t0, Config: ACMEConfig{Enabled: true, Directory: "https://ca.test/dir", RenewBefore: Duration(time.Hour)}})
	f.refuse(&SetACMEConfig{At: t0, Config: ACMEConfig{Enabled: true, Directory: "http://ca.test/dir"}})
	acct, _ := Seal(aead, ACMEAccountKeyLabel, []byte("k"))
	f.must(&SetACMEAccount{At: t0, Account: ACMEAccount{Directory: "https://ca.test/dir", URL: "https://ca.test/acct/1", Key: acct}})
	f.refuse(&SetACMEAccount{At: t0, Account: ACMEAccount{Directory: "https://ca.test/dir", URL: "https://ca.test/acct/1", Key: "plain"}})

	name := CertNameForService("ws/shop/prod/web")
	key, _ := Seal(aead, IssuedKeyLabel(name), []byte("cert key"))
	hosts := []string{"web.example.test", "www.example.test"}
	f.must(&RecordACMEOrder{At: t0, Order: ACMEOrder{ID: "o1", Cert: name, Hosts: hosts, Key: key}})
	f.refuse(&RecordACMEOrder{At: t0, Order: ACMEOrder{ID: "o2", Cert: name, Hosts: hosts, Key: key}}) // one open order per certificate
	f.refuse(&RecordACMEOrder{At: t0, Order: ACMEOrder{ID: "o3", Cert: "bad", Hosts: hosts, Key: key}})
	f.must(&PlaceACMEOrder{At: t0, ID: "o1", URL: "https://ca.test/order/1"})
	f.refuse(&PlaceACMEOrder{At: t0, ID: "o1", URL: "https://ca.test/order/2"}) // a second order for one intent
	f.refuse(&ResolveACMEOrder{At: t0, ID: "o1", Status: OrderDone, CertPEM: "not pem"})
	notAfter := t0.Add(90 * 24 * time.Hour).Truncate(time.Second)
	chain := selfSigned(t, notAfter, hosts...)
	f.must(&ResolveACMEOrder{At: t0, ID: "o1", Status: OrderDone, CertPEM: chain})
	f.refuse(&ResolveACMEOrder{At: t0, ID: "o1", Status: OrderDone, CertPEM: chain}) // resolved once
	f.view(func(s *State) {
		c := s.ACME.Certs[name]
		if c == nil || !c.Servable() || c.Status != CertValid || !c.NotAfter.Equal(notAfter) || c.Service != "ws/shop/prod/web" || s.ACME.Orders["o1"].Status != OrderDone {
			t.Fatalf("issued: %+v", c)
		}
	})

	// A failed renewal keeps the chain, counts and says so in an event.
	f.must(&RecordACMEOrder{At: t0, Order: ACMEOrder{ID: "o4", Cert: name, Hosts: hosts, Key: key}})
	f.refuse(&ResolveACMEOrder{At: t0, ID: "o4", Status: OrderFailed}) // no error text
	next := t0.Add(time.Hour)
	f.must(&ResolveACMEOrder{At: t0, ID: "o4", Status: OrderFailed, Error: "dns problem", NextAttempt: next})
	f.view(func(s *State) {
		c := s.ACME.Certs[name]
		if c.CertPEM != chain || c.Status != CertFailed || c.Failures != 1 || !c.NextAttempt.Equal(next) || c.LastError != "dns problem" {
			t.Fatalf("after failure: %+v", c)
		}
		last := s.Events.Items[len(s.Events.Items)-1]
		if last.Kind != EventCertFailed || !strings.Contains(last.Message, "still served") || last.Service != "ws/shop/prod/web" {
			t.Fatalf("event: %+v", last)
		}
	})
	f.must(&RecordACMEOrder{At: t0, Order: ACMEOrder{ID: "o5", Cert: name, Hosts: hosts, Key: key}})
	f.must(&DeleteIssuedCert{At: t0, Name: name})
	f.refuse(&DeleteIssuedCert{At: t0, Name: name})
	f.view(func(s *State) {
		if len(s.ACME.Certs) != 0 || s.ACME.Orders["o5"].Status != OrderFailed || s.ACME.OpenOrder(name) != nil {
			t.Fatalf("after delete: %+v %+v", s.ACME.Certs, s.ACME.Orders["o5"])
		}
	})
}

func TestTLSSpecDefaults(t *testing.T) {
	s, err := DecodeSpecBytes([]byte("project: p\nenv: e\nservice: s\nkind: service\nport: 80\nhosts: [a.example.test]\ntls: {redirect: false, wildcard: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.AutoTLS() || s.RedirectHTTPS() || !s.WildcardTLS() {
		t.Fatalf("tls: %+v", s.TLS)
	}
	c := s.Clone()
	*c.TLS.Redirect = true
	if s.RedirectHTTPS() {
		t.Fatal("clone shares the tls spec")
	}
	if _, err := DecodeSpecBytes([]byte("project: p\nenv: e\nservice: s\ntls: {bogus: 1}\n")); err == nil {
		t.Fatal("unknown tls field accepted")
	}
}
