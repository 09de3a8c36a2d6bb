package cloudops

import (
	"errors"
	"slices"
	"testing"

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
