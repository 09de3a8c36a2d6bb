package cloudops

import (
	"os"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi/contracttest"
)

// contract records every exchange the fake serves in this package's tests;
// TestMain checks them against the providers' specs once the tests have run.
var contract contracttest.Recorder

func TestMain(m *testing.M) { os.Exit(contracttest.Main(m, &contract, "testdata")) }
