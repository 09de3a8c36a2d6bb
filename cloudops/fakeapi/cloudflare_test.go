package fakeapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

func zoneID(t *testing.T, cf *cloudflare.Client, name string) string {
	t.Helper()
	zs, err := cf.Zones.List(ctx(t), zonesParams(name))
	if err != nil || len(zs.Result) != 1 {
		t.Fatalf("zone %s: %+v %v", name, zs, err)
	}
	return zs.Result[0].ID
}

func cfCode(err error) (int, int64) {
	var e *cloudflare.Error
	if !errors.As(err, &e) || len(e.Errors) == 0 {
		return 0, 0
	}
	return e.StatusCode, e.Errors[0].Code
}

func aRecord(name, ip string, proxied bool) dns.ARecordParam {
	return dns.ARecordParam{Name: cloudflare.F(name), Type: cloudflare.F(dns.ARecordTypeA), Content: cloudflare.F(ip),
		Proxied: cloudflare.F(proxied), TTL: cloudflare.F(dns.TTL(120))}
}

func TestCloudflareAutoPagerStops(t *testing.T) {
	s, url := start(t, Options{Zones: []string{"example.test"}})
	cf := cfClient(url, DefaultToken)
	zid := zoneID(t, cf, "example.test")
	for i := range 7 {
		if _, err := cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: aRecord("web", fmt.Sprintf("192.0.2.%d", i+1), false)}); err != nil {
			t.Fatal(err)
		}
	}
	pager := cf.DNS.Records.ListAutoPaging(ctx(t), dns.RecordListParams{ZoneID: cloudflare.F(zid), PerPage: cloudflare.F(3.0),
		Name: cloudflare.F(dns.RecordListParamsName{Exact: cloudflare.F("web.example.test")})})
	n := 0
	for pager.Next() && n < 100 {
		if r := pager.Current(); r.Name != "web.example.test" || r.Type != "A" || r.TTL != 120 {
			t.Fatalf("record %+v", r)
		}
		n++
	}
	if err := pager.Err(); err != nil || n != 7 {
		t.Fatalf("paged %d records, err %v", n, err)
	}
	// 3 + 3 + 1, then the empty page 4 that ends the pager.
	if got := s.Requests("GET /client/v4/zones/{zid}/dns_records"); got != 4 {
		t.Fatalf("%d list requests, want 4", got)
	}
	zp := cf.Zones.ListAutoPaging(ctx(t), zones.ZoneListParams{})
	nz := 0
	for zp.Next() && nz < 10 {
		nz++
	}
	if zp.Err() != nil || nz != 1 {
		t.Fatalf("zones paged %d, %v", nz, zp.Err())
	}
}

func TestCloudflareRecordRules(t *testing.T) {
	s, url := start(t, Options{Zones: []string{"example.test"}})
	cf := cfClient(url, DefaultToken)
	zid := zoneID(t, cf, "example.test")
	newRec := func(body dns.RecordNewParamsBodyUnion) (*dns.RecordResponse, error) {
		return cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: body})
	}
	r, err := newRec(aRecord("WWW.example.test.", "192.0.2.1", true))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "www.example.test" || !r.Proxied || r.TTL != 1 || len(r.ID) != 32 {
		t.Fatalf("created %+v (want the name normalised, proxied TTL auto, a 32-hex id)", r)
	}
	apex, err := newRec(aRecord("@", "192.0.2.9", false))
	if err != nil || apex.Name != "example.test" {
		t.Fatalf("apex: %+v %v", apex, err)
	}
	for name, tc := range map[string]struct {
		body dns.RecordNewParamsBodyUnion
		code int64
	}{
		"identical":   {aRecord("www", "192.0.2.1", false), 81058},
		"not ipv4":    {aRecord("www", "2001:db8::1", false), 9005},
		"bad ttl":     {dns.ARecordParam{Name: cloudflare.F("x"), Type: cloudflare.F(dns.ARecordTypeA), Content: cloudflare.F("192.0.2.3"), TTL: cloudflare.F(dns.TTL(5))}, 9020},
		"cname clash": {dns.CNAMERecordParam{Name: cloudflare.F("www"), Type: cloudflare.F(dns.CNAMERecordTypeCNAME), Content: cloudflare.F("other.example.test"), TTL: cloudflare.F(dns.TTL(1))}, 81053},
		"bad name":    {aRecord("bad name", "192.0.2.4", false), 9005},
	} {
		_, err := newRec(tc.body)
		if status, code := cfCode(err); status != http.StatusBadRequest || code != tc.code {
			t.Errorf("%s: %v (status %d code %d), want 400 code %d", name, err, status, code, tc.code)
		}
	}
	// PATCH changes only what it names; a refused change leaves the record.
	ed, err := cf.DNS.Records.Edit(ctx(t), r.ID, dns.RecordEditParams{ZoneID: cloudflare.F(zid), Body: dns.ARecordParam{Proxied: cloudflare.F(false), TTL: cloudflare.F(dns.TTL(300))}})
	if err != nil || ed.Proxied || ed.TTL != 300 || ed.Content != "192.0.2.1" || ed.Name != "www.example.test" {
		t.Fatalf("edit: %+v %v", ed, err)
	}
	_, err = cf.DNS.Records.Update(ctx(t), r.ID, dns.RecordUpdateParams{ZoneID: cloudflare.F(zid), Body: aRecord("www", "nope", false)})
	if status, _ := cfCode(err); status != http.StatusBadRequest {
		t.Fatalf("bad update: %v", err)
	}
	got, err := cf.DNS.Records.Get(ctx(t), r.ID, dns.RecordGetParams{ZoneID: cloudflare.F(zid)})
	if err != nil || got.Content != "192.0.2.1" || got.TTL != 300 {
		t.Fatalf("record after a refused update: %+v %v", got, err)
	}
	if _, err := cf.DNS.Records.Delete(ctx(t), r.ID, dns.RecordDeleteParams{ZoneID: cloudflare.F(zid)}); err != nil {
		t.Fatal(err)
	}
	_, err = cf.DNS.Records.Delete(ctx(t), r.ID, dns.RecordDeleteParams{ZoneID: cloudflare.F(zid)})
	if status, code := cfCode(err); status != 404 || code != 81044 {
		t.Fatalf("second delete: %v", err)
	}
	_, err = cf.DNS.Records.List(ctx(t), dns.RecordListParams{ZoneID: cloudflare.F("0000")})
	if status, code := cfCode(err); status != 404 || code != 7003 {
		t.Fatalf("unknown zone: %v", err)
	}
	if n := len(s.State().DNSRecords); n != 1 {
		t.Fatalf("%d records left, want the apex only", n)
	}
}
