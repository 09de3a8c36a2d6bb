package fakeapi

import (
	"os"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi/contracttest"
)

// contract records every exchange of this package's tests; TestMain checks
// them against the providers' specs once the tests have run.
var contract contracttest.Recorder

func TestMain(m *testing.M) { os.Exit(contracttest.Main(m, &contract, "../testdata")) }

// start is Start with the exchanges recorded for the contract check.
func start(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	return StartWrapped(t, opts, contract.Wrap)
}
