package fakeapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi/contracttest"
)

// contract records every exchange of this package's tests; TestMain checks
// them against the providers' specs once the tests have run.
var contract contracttest.Recorder

func TestMain(m *testing.M) { os.Exit(contracttest.Main(m, &contract, "../testdata")) }

// start serves a fake whose exchanges are recorded for the contract check.
func start(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	return serveFake(t, opts, contract.Wrap)
}

// serveFake is fakeapitest.StartWrapped, which this package's own tests cannot
// import (it imports fakeapi).
func serveFake(t testing.TB, opts Options, wrap func(http.Handler) http.Handler) (*Server, string) {
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
