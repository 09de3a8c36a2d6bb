package fakeapi

import (
	"net/http/httptest"
	"testing"
)

// Start runs a fake on 127.0.0.1 for the test and returns it with its base
// URL (the DigitalOcean base; Cloudflare's is URL + CloudflarePath). Both are
// closed when the test ends.
func Start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("fakeapi: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}
