// Package fakeapitest starts the fake DigitalOcean + Cloudflare API
// (cloudops/fakeapi) for a test, closed when the test ends. It imports
// `testing`, so only tests import it and the agent's binary (which links
// fakeapi for local mode) never links the kit.
package fakeapitest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

// Start runs a fake on 127.0.0.1 for the test and returns it with its base
// URL (the DigitalOcean base; Cloudflare's is URL + CloudflarePath). Both are
// closed when the test ends.
func Start(t testing.TB, opts fakeapi.Options) (*fakeapi.Server, string) {
	t.Helper()
	return StartWrapped(t, opts, nil)
}

// StartWrapped is Start with the fake's handler wrapped by wrap (nil: none),
// for tests that watch every exchange, such as the contract test's
// recorder.
func StartWrapped(t testing.TB, opts fakeapi.Options, wrap func(http.Handler) http.Handler) (*fakeapi.Server, string) {
	t.Helper()
	s, err := fakeapi.New(opts)
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
