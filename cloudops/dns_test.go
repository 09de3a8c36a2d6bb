package cloudops

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

func TestFindZoneByLongestSuffix(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	for host, want := range map[string]string{
		"www.example.test":        "example.test",
		"example.test":            "example.test",
		"a.b.sub.example.test.":   "sub.example.test",
		"sub.example.test":        "sub.example.test",
		"API.Other.Test":          "other.test",
		"*.wild.sub.example.test": "sub.example.test",
	} {
		z, err := e.cf.FindZone(c, host)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if z.Name != want || z.ID == "" || z.Status != "active" {
			t.Fatalf("%s: zone %+v, want %s", host, z, want)
		}
	}
	bare := NewCloudflare(CFConfig{Token: fakeapi.DefaultToken, BaseURL: e.url}) // no path: /client/v4/ is added
	if z, err := bare.FindZone(c, "www.example.test"); err != nil || z.Name != "example.test" {
		t.Fatalf("with the bare fake URL: %+v %v", z, err)
	}
	if _, err := e.cf.FindZone(c, "www.nowhere.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown zone: %v", err)
	}
	for _, bad := range []string{"", "localhost", "bad host.example.test", "-a.example.test"} {
		if _, err := e.cf.FindZone(c, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

// contents returns the records' addresses and ids, in order.
func contents(rs []DNSRecord) (ips []string, ids map[string]string) {
	ids = map[string]string{}
	for _, r := range rs {
		ips = append(ips, r.Content)
		ids[r.Content] = r.ID
	}
	return ips, ids
}

// fakeARecords returns the fake's A records of host.
func fakeARecords(f *fakeapi.Server, host string) []fakeapi.CFRecord {
	var out []fakeapi.CFRecord
	for _, r := range f.State().DNSRecords {
		if r.Name == host && r.Type == "A" {
			out = append(out, r)
		}
	}
	return out
}

func TestEnsureARecords(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	z, err := e.cf.FindZone(c, "web.example.test")
	if err != nil {
		t.Fatal(err)
	}
	const host = "web.example.test"
	// A neighbour's record must survive everything below.
	if _, err := e.cf.EnsureARecords(c, z.ID, "api.example.test", []string{"192.0.2.99"}, false); err != nil {
		t.Fatal(err)
	}

	recs, err := e.cf.EnsureARecords(c, z.ID, host, []string{"192.0.2.2", "192.0.2.1", "192.0.2.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ips, first := contents(recs)
	if !slices.Equal(ips, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Fatalf("{} -> {a,b}: %v", ips)
	}
	for _, r := range recs {
		if r.Proxied || r.TTL != 60 || r.Name != host || r.Type != "A" || r.ZoneID != z.ID {
			t.Fatalf("record %+v", r)
		}
	}

	recs, err = e.cf.EnsureARecords(c, z.ID, host, []string{"192.0.2.2", "192.0.2.3"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ips, second := contents(recs)
	if !slices.Equal(ips, []string{"192.0.2.2", "192.0.2.3"}) {
		t.Fatalf("{a,b} -> {b,c}: %v", ips)
	}
	if second["192.0.2.2"] != first["192.0.2.2"] {
		t.Fatal("the kept record b was replaced instead of kept")
	}
	if got := fakeARecords(e.fake, host); len(got) != 2 {
		t.Fatalf("fake holds %d records of %s, want 2 (a deleted)", len(got), host)
	}

	before := e.fake.Requests("PUT /client/v4/zones/{zid}/dns_records/{id}")
	recs, err = e.cf.EnsureARecords(c, z.ID, host, []string{"192.0.2.3", "192.0.2.2"}, true)
	if err != nil {
		t.Fatal(err)
	}
	_, third := contents(recs)
	for _, r := range recs {
		if !r.Proxied || r.TTL != 1 || third[r.Content] != second[r.Content] {
			t.Fatalf("proxied flip: %+v (ids before %v)", r, second)
		}
	}
	if n := e.fake.Requests("PUT /client/v4/zones/{zid}/dns_records/{id}") - before; n != 2 {
		t.Fatalf("proxied flip sent %d updates, want 2", n)
	}
	for _, r := range fakeARecords(e.fake, host) {
		if !r.Proxied {
			t.Fatalf("fake record not proxied: %+v", r)
		}
	}

	// Unchanged: only a listing.
	e.fake.ResetRequests()
	if _, err := e.cf.EnsureARecords(c, z.ID, host, []string{"192.0.2.2", "192.0.2.3"}, true); err != nil {
		t.Fatal(err)
	}
	if st := e.fake.State(); len(st.Requests) != 1 || st.Requests["GET /client/v4/zones/{zid}/dns_records"] != 1 {
		t.Fatalf("a no-op ensure sent %v", st.Requests)
	}

	listed, err := e.cf.ListARecords(c, z.ID, host)
	if err != nil || len(listed) != 2 {
		t.Fatalf("list: %+v %v", listed, err)
	}
	if err := e.cf.DeleteARecords(c, z.ID, host); err != nil {
		t.Fatal(err)
	}
	if got := fakeARecords(e.fake, host); len(got) != 0 {
		t.Fatalf("after delete the fake holds %+v", got)
	}
	if err := e.cf.DeleteARecords(c, z.ID, host); err != nil {
		t.Fatalf("deleting none: %v", err)
	}
	if got := fakeARecords(e.fake, "api.example.test"); len(got) != 1 {
		t.Fatalf("the neighbour's record was touched: %+v", got)
	}
}

func TestEnsureARecordsRefusesBadInput(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	z, err := e.cf.FindZone(c, "x.example.test")
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"ipv6": func() error {
			_, err := e.cf.EnsureARecords(c, z.ID, "x.example.test", []string{"2001:db8::1"}, false)
			return err
		},
		"garbage": func() error {
			_, err := e.cf.EnsureARecords(c, z.ID, "x.example.test", []string{"1.2.3"}, false)
			return err
		},
		"host":    func() error { _, err := e.cf.EnsureARecords(c, z.ID, "x y.example.test", nil, false); return err },
		"zone id": func() error { _, err := e.cf.EnsureARecords(c, "../zones", "x.example.test", nil, false); return err },
		"list":    func() error { _, err := e.cf.ListARecords(c, "", "x.example.test"); return err },
		"delete":  func() error { return e.cf.DeleteARecords(c, z.ID, "nodots") },
	} {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if n := len(e.fake.State().Requests); n != 1 { // only FindZone's listing
		t.Fatalf("bad input reached the API: %v", e.fake.State().Requests)
	}
	if _, err := e.cf.EnsureARecords(c, "0000000000000000000000000000dead", "x.example.test", []string{"192.0.2.1"}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown zone: %v, want ErrNotFound", err)
	}
}

func TestListARecordsAcrossPages(t *testing.T) {
	e := newEnv(t, testOptions())
	e.cf.cfg.PageSize = 2
	c := ctx(t)
	z, err := e.cf.FindZone(c, "many.example.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"}
	if _, err := e.cf.EnsureARecords(c, z.ID, "many.example.test", want, false); err != nil {
		t.Fatal(err)
	}
	e.fake.ResetRequests()
	recs, err := e.cf.ListARecords(c, z.ID, "many.example.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Content)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v", got)
	}
	if n := e.fake.Requests("GET /client/v4/zones/{zid}/dns_records"); n != 3 {
		t.Fatalf("%d pages fetched, want 3", n)
	}
}

// foreignA creates an A record of host the way a person would, without
// dropmesh's comment, through the real client, and returns its id.
func foreignA(t *testing.T, e *testEnv, zoneID, host, ip string) string {
	t.Helper()
	r, err := e.cf.records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zoneID), Body: dns.ARecordParam{
		Name: cloudflare.F(host), Type: cloudflare.F(dns.ARecordTypeA), Content: cloudflare.F(ip), TTL: cloudflare.F(dns.TTL(300))}})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// TestForeignARecordsAreNeverTouched: a host with an A record dropmesh did
// not make is refused with an error naming the record, and nothing is sent;
// deleting a host's records leaves the foreign one; dropmesh's own records
// beside it are still managed.
func TestForeignARecordsAreNeverTouched(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	const host = "taken.example.test"
	z, err := e.cf.FindZone(c, host)
	if err != nil {
		t.Fatal(err)
	}
	id := foreignA(t, e, z.ID, host, "198.51.100.7")
	before := e.fake.State()

	_, err = e.cf.EnsureARecords(c, z.ID, host, []string{"192.0.2.1"}, true)
	if !errors.Is(err, ErrForeignRecord) || !strings.Contains(err.Error(), host+" A 198.51.100.7 (id "+id+")") {
		t.Fatalf("ensure over a foreign record: %v", err)
	}
	after := e.fake.State()
	for k, n := range after.Requests {
		if k != "GET /client/v4/zones/{zid}/dns_records" && n != before.Requests[k] {
			t.Fatalf("a refused ensure sent %s (%d, was %d)", k, n, before.Requests[k])
		}
	}
	got := fakeARecords(e.fake, host)
	if len(got) != 1 || got[0].ID != id || got[0].Content != "198.51.100.7" || got[0].Proxied || got[0].TTL != 300 {
		t.Fatalf("the foreign record changed: %+v", got)
	}
	recs, err := e.cf.ListARecords(c, z.ID, host)
	if err != nil || len(recs) != 1 || recs[0].Owned() || !errors.Is(CheckOwned(host, recs), ErrForeignRecord) {
		t.Fatalf("listed %+v %v", recs, err)
	}

	// dropmesh's records of another host are made, marked and deleted as
	// before; a foreign record added beside them later survives the delete.
	const mine = "mine.example.test"
	made, err := e.cf.EnsureARecords(c, z.ID, mine, []string{"192.0.2.1", "192.0.2.2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range made {
		if !r.Owned() || CheckOwned(mine, made) != nil {
			t.Fatalf("a record dropmesh made is not marked: %+v", r)
		}
	}
	other := foreignA(t, e, z.ID, mine, "198.51.100.8")
	if _, err := e.cf.EnsureARecords(c, z.ID, mine, []string{"192.0.2.1"}, false); !errors.Is(err, ErrForeignRecord) {
		t.Fatalf("ensure after a foreign record joined: %v", err)
	}
	if got := fakeARecords(e.fake, mine); len(got) != 3 {
		t.Fatalf("a refused ensure changed the records: %+v", got)
	}
	if err := e.cf.DeleteARecords(c, z.ID, mine); err != nil {
		t.Fatal(err)
	}
	if got := fakeARecords(e.fake, mine); len(got) != 1 || got[0].ID != other {
		t.Fatalf("after delete: %+v, want only the foreign %s", got, other)
	}
	if err := e.cf.DeleteARecords(c, z.ID, host); err != nil {
		t.Fatal(err)
	}
	if got := fakeARecords(e.fake, host); len(got) != 1 || got[0].ID != id {
		t.Fatalf("delete removed a foreign record: %+v", got)
	}
}
