package cloudops

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
)

// TestChallengeRecords: presenting writes one marked TXT record (twice is
// still one), a foreign TXT record under the same name is never removed,
// cleanup removes dropmesh's own, and bad input changes nothing.
func TestChallengeRecords(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	z, err := e.cf.FindZone(c, "web.example.test")
	if err != nil {
		t.Fatal(err)
	}
	v1 := strings.Repeat("a", 43)
	v2 := strings.Repeat("B", 42) + "_"
	if _, err := e.cf.records.New(c, dns.RecordNewParams{ZoneID: cloudflare.F(z.ID), Body: dns.TXTRecordParam{
		Name: cloudflare.F("_acme-challenge.web.example.test"), Type: cloudflare.F(dns.TXTRecordTypeTXT), Content: cloudflare.F("someone-else"), TTL: cloudflare.F(dns.TTL(60))}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, err := e.cf.PresentChallenge(c, z.ID, "web.example.test", v1)
		if err != nil || !r.Owned() || r.Name != "_acme-challenge.web.example.test" {
			t.Fatalf("present: %+v %v", r, err)
		}
	}
	if _, err := e.cf.PresentChallenge(c, z.ID, "*.web.example.test", v2); err != nil {
		t.Fatal(err)
	}
	txt := func() (own, foreign int) {
		for _, r := range e.fake.State().DNSRecords {
			if r.Type == "TXT" {
				if r.Comment != nil && *r.Comment == OwnerComment {
					own++
				} else {
					foreign++
				}
			}
		}
		return
	}
	if own, foreign := txt(); own != 2 || foreign != 1 {
		t.Fatalf("after present: %d own, %d foreign", own, foreign)
	}
	if err := e.cf.CleanupChallenge(c, z.ID, "web.example.test", v1); err != nil {
		t.Fatal(err)
	}
	if own, foreign := txt(); own != 1 || foreign != 1 {
		t.Fatalf("after cleanup of one: %d own, %d foreign", own, foreign)
	}
	if err := e.cf.CleanupChallenge(c, z.ID, "web.example.test", ""); err != nil {
		t.Fatal(err)
	}
	if own, foreign := txt(); own != 0 || foreign != 1 {
		t.Fatalf("after cleanup of all: %d own, %d foreign", own, foreign)
	}
	for _, bad := range []struct{ host, value string }{{"web.example.test", "short"}, {"bad host", v1}, {"web.example.test", `"` + v1 + `"`}} {
		if _, err := e.cf.PresentChallenge(c, z.ID, bad.host, bad.value); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}
