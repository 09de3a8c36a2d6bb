package fakeapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Start runs a fake on 127.0.0.1 for the test and returns it with its base
// URL (the DigitalOcean base; Cloudflare's is URL + CloudflarePath). Both are
// closed when the test ends.
func Start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	return StartWrapped(t, opts, nil)
}

// StartWrapped is Start with the fake's handler wrapped by wrap (nil: none),
// for tests that watch every exchange, such as the contract test's
// recorder.
func StartWrapped(t testing.TB, opts Options, wrap func(http.Handler) http.Handler) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("fakeapi: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return s, hs.URL
}
