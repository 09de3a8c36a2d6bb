package edge

import (
	"testing"
	"time"
)

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"app.example.test":      "app.example.test",
		"APP.Example.Test":      "app.example.test",
		"app.example.test:8080": "app.example.test",
		"app.example.test.":     "app.example.test",
		"app.example.test.:443": "app.example.test",
		"[::1]:80":              "::1",
		"[::1]":                 "::1",
		"127.0.0.1:80":          "127.0.0.1",
		"":                      "",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTableLookup(t *testing.T) {
	cfg := Config{Routes: []Route{
		{Host: "x.wild.example.test", Service: "s/p/exact", Upstreams: []string{"10.0.0.1:1"}},
		{Host: "*.wild.example.test", Service: "s/p/wild", Upstreams: []string{"10.0.0.1:2"}},
		{Host: "*.deep.wild.example.test", Service: "s/p/deep", Upstreams: []string{"10.0.0.1:3"}},
	}, UIHost: "mesh.example.test", UIUpstream: "10.0.0.1:4"}
	tb, err := newTable(cfg, noHTTPS)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"x.wild.example.test":        "s/p/exact",
		"y.wild.example.test":        "s/p/wild",
		"a.b.wild.example.test":      "s/p/wild",
		"a.deep.wild.example.test":   "s/p/deep",
		"a.b.deep.wild.example.test": "s/p/deep",
		"deep.wild.example.test":     "s/p/wild",
		"mesh.example.test":          "ui",
		"wild.example.test":          "",
		"example.test":               "",
		"test":                       "",
		"":                           "",
	} {
		r := tb.lookup(host)
		got := ""
		if r != nil {
			got = r.service
		}
		if got != want {
			t.Errorf("lookup(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestRouteOrderRoundRobinSkipsDown(t *testing.T) {
	r := &route{}
	for _, a := range []string{"a", "b", "c"} {
		r.upstreams = append(r.upstreams, &upstream{addr: a})
	}
	now := time.Now()
	firsts := map[string]int{}
	for range 30 {
		firsts[r.order(now)[0].addr]++
	}
	if firsts["a"] != 10 || firsts["b"] != 10 || firsts["c"] != 10 {
		t.Fatalf("round robin uneven: %v", firsts)
	}
	r.upstreams[1].downUntil.Store(now.Add(time.Second).UnixNano())
	for range 6 {
		o := r.order(now)
		if len(o) != 3 || o[2].addr != "b" {
			t.Fatalf("down upstream not last: %v", []string{o[0].addr, o[1].addr, o[2].addr})
		}
	}
	if o := r.order(now.Add(2 * time.Second)); len(o) != 3 {
		t.Fatal("order lost upstreams")
	}
}

func TestTableCertForLongestZone(t *testing.T) {
	c1, _ := selfSignedZone(t, "example.test")
	c2, _ := selfSignedZone(t, "eu.example.test")
	tb, err := newTable(Config{Certs: []Cert{c1, c2}}, noHTTPS)
	if err != nil {
		t.Fatal(err)
	}
	if tb.certFor("a.eu.example.test") != tb.certs[1].cert || tb.certFor("eu.example.test") != tb.certs[1].cert {
		t.Fatal("the longer zone did not win")
	}
	if tb.certFor("a.example.test") != tb.certs[0].cert || tb.certFor("example.test") != tb.certs[0].cert {
		t.Fatal("zone certificate not found")
	}
	if tb.certFor("badexample.test") != nil || tb.certFor("other.test") != nil {
		t.Fatal("a certificate matched outside its zone")
	}
}
