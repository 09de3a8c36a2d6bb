package cli

import (
	"strings"
	"testing"
)

// TestTokensCreateUseRevoke: a deployer token made by the CLI lists nodes,
// is refused on an admin command, and stops working once revoked.
func TestTokensCreateUseRevoke(t *testing.T) {
	h := newHarness(t)
	r := h.run("tokens", "create", "--role", "deployer", "--name", "ci")
	token := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(token, "dmt_") || !strings.Contains(r.stderr, "not shown again") {
		t.Fatalf("%+v", r)
	}
	if r := h.run("tokens", "create", "--role", "root", "--name", "x"); r.code != 2 {
		t.Fatalf("bad role: %+v", r)
	}
	r = h.run("tokens")
	if r.code != 0 || !strings.Contains(r.stdout, "ci") || !strings.Contains(r.stdout, "deployer") || strings.Contains(r.stdout, token) {
		t.Fatalf("%+v", r)
	}

	h.vars["DROPMESH_API_KEY"] = token
	if r := h.run("nodes"); r.code != 0 {
		t.Fatalf("nodes with the deployer token: %+v", r)
	}
	if r := h.run("users"); r.code != 1 || !strings.Contains(r.stderr, "needs the role admin") {
		t.Fatalf("users with the deployer token: %+v", r)
	}
	h.vars["DROPMESH_API_KEY"] = testKey

	if r := h.run("tokens", "revoke", "ci"); r.code != 0 || r.stdout != "revoked token ci\n" {
		t.Fatalf("%+v", r)
	}
	h.vars["DROPMESH_API_KEY"] = token
	if r := h.run("nodes"); r.code == 0 {
		t.Fatalf("a revoked token still works: %+v", r)
	}
}
