package fakeapi

import (
	"slices"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	cfdns "github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/miekg/dns"
)

// query asks the fake's DNS server over net ("udp" or "tcp").
func query(t *testing.T, addr, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: netw}
	r, _, err := c.ExchangeContext(ctx(t), m, addr)
	if err != nil {
		t.Fatalf("dns %s %s %s: %v", netw, name, dns.TypeToString[qtype], err)
	}
	return r
}

func TestDNSServesZoneRecords(t *testing.T) {
	s, url := start(t, Options{Zones: []string{"example.test"}})
	d, err := s.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cf := cfClient(url, DefaultToken)
	zid := zoneID(t, cf, "example.test")
	if _, err := cf.DNS.Records.New(ctx(t), cfdns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: aRecord("web", "127.0.0.2", false)}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"token-one", "token-two"} {
		if _, err := cf.DNS.Records.New(ctx(t), cfdns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: cfdns.TXTRecordParam{
			Name: cloudflare.F("_acme-challenge.web"), Type: cloudflare.F(cfdns.TXTRecordTypeTXT), Content: cloudflare.F(`"` + v + `"`), TTL: cloudflare.F(cfdns.TTL(60))}}); err != nil {
			t.Fatal(err)
		}
	}

	for _, netw := range []string{"udp", "tcp"} {
		r := query(t, d.Addr(), netw, "WEB.example.test", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.2" {
			t.Fatalf("%s A: %v", netw, r)
		}
		r = query(t, d.Addr(), netw, "_acme-challenge.web.example.test", dns.TypeTXT)
		var got []string
		for _, rr := range r.Answer {
			got = append(got, rr.(*dns.TXT).Txt...)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"token-one", "token-two"}) {
			t.Fatalf("%s TXT: %v", netw, r)
		}
	}
	// A name with other types only: NOERROR, no answer, the SOA.
	if r := query(t, d.Addr(), "udp", "web.example.test", dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Fatalf("no data: %v", r)
	}
	if r := query(t, d.Addr(), "udp", "nope.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("missing name: %v", r)
	}
	if r := query(t, d.Addr(), "udp", "example.test", dns.TypeSOA); len(r.Answer) != 1 {
		t.Fatalf("soa: %v", r)
	}
	if r := query(t, d.Addr(), "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Fatalf("outside the zones: %v", r)
	}
	// Deleting a record removes it from the answers.
	recs := s.State().DNSRecords
	for _, rec := range recs {
		if rec.Type == "TXT" {
			if _, err := cf.DNS.Records.Delete(ctx(t), rec.ID, cfdns.RecordDeleteParams{ZoneID: cloudflare.F(zid)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := query(t, d.Addr(), "udp", "_acme-challenge.web.example.test", dns.TypeTXT); r.Rcode != dns.RcodeNameError {
		t.Fatalf("after delete: %v", r)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
