package raftfsm

import (
	"strings"
	"testing"
)

func TestParseServiceName(t *testing.T) {
	good := map[string]ServiceName{
		"shop/prod/web":        {Project: "shop", Env: "prod", Service: "web"},
		"demo/shop/prod/web":   {Workspace: "demo", Project: "shop", Env: "prod", Service: "web"},
		"9fe5e6/shop/prod/web": {Workspace: "9fe5e6", Project: "shop", Env: "prod", Service: "web"},
	}
	for in, want := range good {
		got, err := ParseServiceName(in)
		if err != nil || got != want || got.String() != in {
			t.Fatalf("%q: %+v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "web", "a/b", "a/b/c/d/e", "shop/prod/web;rm", "shop/prod/WEB", "a//b", "shop/prod/w b", "ws_1/a/b/c"} {
		if _, err := ParseServiceName(in); err == nil {
			t.Fatalf("%q accepted", in)
		}
	}
}

func TestValidateHostname(t *testing.T) {
	for _, h := range []string{"a.com", "shop.example.com", "xn--bcher-kva.example", "a-b.c-d.io", "1.example.com"} {
		if err := ValidateHostname(h, false); err != nil {
			t.Fatalf("%q: %v", h, err)
		}
	}
	if err := ValidateHostname("*.example.com", true); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "a", "*.example.com", "a..com", "-a.com", "a-.com", "A.com", "a.com.", "a;b.com", "a{b}.com",
		"a b.com", "a.com\n", "1.2.3.4", "ехаmple.com", strings.Repeat("a", 64) + ".com", "a.*.com"} {
		if err := ValidateHostname(h, false); err == nil {
			t.Fatalf("%q accepted", h)
		}
	}
	if err := ValidateHostname("a.*.com", true); err == nil {
		t.Fatal("inner wildcard accepted")
	}
}

func TestValidators(t *testing.T) {
	checks := []struct {
		name string
		err  error
		ok   bool
	}{
		{"node id", ValidateNodeID("node-1"), true},
		{"node id caps", ValidateNodeID("Node-1"), false},
		{"user", ValidateUserName("admin"), true},
		{"user space", ValidateUserName("ad min"), false},
		{"region", ValidateRegion("fra1"), true},
		{"region bad", ValidateRegion("frankfurt"), false},
		{"snapshot", ValidateSnapshotName("my-llm-ready-snapshot"), true},
		{"snapshot bad", ValidateSnapshotName("my snapshot"), false},
		{"mount", ValidateMountPath("/var/lib/data"), true},
		{"mount dots", ValidateMountPath("/var/../etc"), false},
		{"mount quote", ValidateMountPath("/data'"), false},
		{"image", ValidateImageRef("127.0.0.1:5000/shop/web:1.4"), true},
		{"image digest", ValidateImageRef("redis@sha256:" + strings.Repeat("a", 64)), true},
		{"image space", ValidateImageRef("redis 7"), false},
		{"workspace id", ValidateWorkspaceID("9fe5e6"), true},
		{"workspace id long", ValidateWorkspaceID("9fe5e6a"), false},
	}
	for _, c := range checks {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, c.err, c.ok)
		}
	}
}

func FuzzValidateHostname(f *testing.F) {
	for _, s := range []string{"a.com", "*.a.com", "a;b.com", "ехаmple.com", "a..b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if ValidateHostname(h, true) != nil {
			return
		}
		// Whatever passes is safe to paste into nginx config and DNS.
		if strings.ContainsAny(h, " ;{}\"'$\\\n\t/") || strings.ToLower(h) != h {
			t.Fatalf("unsafe host %q accepted", h)
		}
		for _, r := range h {
			if r > 0x7e {
				t.Fatalf("non-ASCII host %q accepted", h)
			}
		}
	})
}

func FuzzParseServiceName(f *testing.F) {
	for _, s := range []string{"shop/prod/web", "a/b/c/d", "a/b", "x;y/z/w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseServiceName(s)
		if err != nil {
			return
		}
		key := ServiceKey("abcdef", n.Project, n.Env, n.Service)
		if strings.ContainsAny(key, " ;{}\"'$\\\n\t_") {
			t.Fatalf("unsafe name %q accepted", s)
		}
	})
}

func FuzzDecodeSpec(f *testing.F) {
	f.Add([]byte("project: a\nservice: b\nimage: x:1\nport: 80\nhosts: [a.com]"))
	f.Add([]byte(`{"project":"a","service":"b","env":{"A":"1"}}`))
	f.Add([]byte("env: [1]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := DecodeSpecBytes(data)
		if err != nil {
			return
		}
		spec.Normalize()
		_ = spec.Validate() // must not panic
	})
}
