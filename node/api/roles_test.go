package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// createToken creates an API token through the API with the cluster key.
func createToken(t *testing.T, call func(method, path string, body any, key string) (*http.Response, []byte), name string, role raftfsm.Role) control.TokenCreated {
	t.Helper()
	var out control.TokenCreated
	resp, body := call(http.MethodPost, "/v1/tokens", control.TokenRequest{Name: name, Role: role}, "")
	expect(t, resp, body, http.StatusCreated, &out)
	if !strings.HasPrefix(out.Token, raftfsm.APITokenPrefix) || out.Info.Role != role || out.Info.Name != name {
		t.Fatalf("created token %+v", out)
	}
	return out
}

// TestRolesOnEveryRoute drives every route of the table with a viewer and a
// deployer token: a route above the token's role is 403 and reaches nothing;
// a route within it is not refused for the role. A new route is covered the
// moment it enters the table.
func TestRolesOnEveryRoute(t *testing.T) {
	fake := apitest.NewFake("node-1")
	mod := func(o *Options) { o.Limits.AuthFailures = 100000 }
	srv := newTestServer(t, fake, mod)
	do := func(method, path string, body any, key string) (*http.Response, []byte) {
		return call(t, srv, method, path, body, key)
	}
	viewer := createToken(t, do, "watcher", raftfsm.RoleViewer).Token
	deployer := createToken(t, do, "ci", raftfsm.RoleDeployer).Token

	routes := Routes(Options{Controller: fake, APIKey: testKey})
	var admin, deploy int
	for _, r := range routes {
		need := requiredRole(r)
		if r.Kind == RoutePublic || r.access() != AccessKey {
			// Internal routes refuse any caller without a node
			// certificate before the role is looked at
			// (internal_test.go); /v1/join's credential is the join
			// token in its body.
			continue
		}
		path := samplePath(ginPath(r.Path))
		for _, tok := range []struct {
			name, key string
			role      raftfsm.Role
		}{{"viewer", viewer, raftfsm.RoleViewer}, {"deployer", deployer, raftfsm.RoleDeployer}} {
			if roleAllows(tok.role, need) {
				if r.Method != http.MethodGet {
					continue // allowed writes run for real below, not with sample input
				}
				resp, body := do(r.Method, path, nil, tok.key)
				if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
					t.Errorf("%s token on %s %s (needs %s): status %d; body %s", tok.name, r.Method, r.Path, need, resp.StatusCode, body)
				}
				continue
			}
			before, calls := fake.StateJSON(), len(fake.Calls())
			resp, body := do(r.Method, path, nil, tok.key)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s token on %s %s (needs %s): status %d, want 403; body %s", tok.name, r.Method, r.Path, need, resp.StatusCode, body)
				continue
			}
			if e := errorOf(t, body); e.Error != control.CodeForbidden || !strings.Contains(e.Message, string(need)) {
				t.Errorf("%s %s: error %+v", r.Method, r.Path, e)
			}
			if fake.StateJSON() != before {
				t.Errorf("%s token on %s %s: refused but the state changed", tok.name, r.Method, r.Path)
			}
			if n := len(fake.Calls()); n != calls {
				t.Errorf("%s token on %s %s: refused but reached the controller: %v", tok.name, r.Method, r.Path, fake.Calls()[calls:])
			}
		}
		switch need {
		case raftfsm.RoleAdmin:
			admin++
		case raftfsm.RoleDeployer:
			deploy++
		}
	}
	if admin < 20 || deploy < 5 {
		t.Fatalf("%d admin and %d deployer routes: the table lost its roles", admin, deploy)
	}

	// A deployer token deploys; the event names it.
	resp, body := do(http.MethodPost, "/v1/services", mustSpecJSON(t), deployer)
	expect(t, resp, body, http.StatusAccepted, nil)
	// The cluster API key stays the admin credential.
	resp, body = do(http.MethodGet, "/v1/users", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

func mustSpecJSON(t *testing.T) raftfsm.ServiceSpec {
	t.Helper()
	return mustSpec(t, "project: shop\nenv: prod\nservice: web\nimage: 127.0.0.1:5000/shop/web:1\nport: 8080\n")
}

// TestRouteTableRoles keeps the roles of the route table honest: nothing
// but a read is open to a viewer, and every route that touches users,
// tokens, settings, keys or nodes is admin only.
func TestRouteTableRoles(t *testing.T) {
	adminAll := []string{"/v1/users", "/v1/tokens", "/v1/gossip-keys", "/v1/internal/", "/v1/state/", "/v1/webhooks", "/v1/agent/logs"}
	adminWrites := []string{"/v1/nodes", "/v1/settings", "/v1/origin-certs", "/v1/registries", "/v1/snapshots"}
	has := func(p string, prefixes []string) bool {
		for _, x := range prefixes {
			if strings.HasPrefix(p, x) {
				return true
			}
		}
		return false
	}
	for _, r := range Routes(Options{}) {
		need := requiredRole(r)
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		switch {
		case r.Kind == RoutePublic:
			if need != "" {
				t.Errorf("public %s %s needs %s", r.Method, r.Path, need)
			}
		case !read && !need.Allows(raftfsm.RoleDeployer):
			t.Errorf("%s %s changes something but needs only %s", r.Method, r.Path, need)
		case has(r.Path, adminAll) || (!read && has(r.Path, adminWrites)):
			if need != raftfsm.RoleAdmin {
				t.Errorf("%s %s needs %s, want admin", r.Method, r.Path, need)
			}
		case !need.Valid():
			t.Errorf("%s %s needs no known role (%q)", r.Method, r.Path, need)
		}
	}
}

func TestTokensLifecycle(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, func(o *Options) { o.Limits.TokenUseFlush = 10 * time.Millisecond })
	do := func(method, path string, body any, key string) (*http.Response, []byte) {
		return call(t, srv, method, path, body, key)
	}
	created := createToken(t, do, "ci", raftfsm.RoleDeployer)
	if strings.Contains(fake.StateJSON(), created.Token) {
		t.Fatal("the state holds the token's text")
	}
	// Bad requests are 400 and change nothing.
	before := fake.StateJSON()
	for _, bad := range []control.TokenRequest{{Name: "ci", Role: "root"}, {Name: "No Name", Role: raftfsm.RoleViewer}} {
		resp, body := do(http.MethodPost, "/v1/tokens", bad, "")
		expect(t, resp, body, http.StatusBadRequest, nil)
	}
	resp, body := do(http.MethodPost, "/v1/tokens", control.TokenRequest{Name: "ci", Role: raftfsm.RoleViewer}, "")
	expect(t, resp, body, http.StatusConflict, nil)
	if fake.StateJSON() != before {
		t.Fatal("refused token requests changed the state")
	}

	// A token of the right shape but a wrong secret is no credential.
	id := created.Info.ID
	forged := raftfsm.APITokenText(id, strings.Repeat("A", 43))
	resp, body = do(http.MethodGet, "/v1/nodes", nil, forged)
	expect(t, resp, body, http.StatusUnauthorized, nil)

	resp, body = do(http.MethodGet, "/v1/nodes", nil, created.Token)
	expect(t, resp, body, http.StatusOK, nil)
	testkit.WaitFor(t, 5*time.Second, "the token's last use", func() bool {
		var list []control.TokenInfo
		resp, body := do(http.MethodGet, "/v1/tokens", nil, "")
		expect(t, resp, body, http.StatusOK, &list)
		return len(list) == 1 && list[0].ID == id && !list[0].LastUsedAt.IsZero()
	})
	if strings.Contains(string(body), "hash") {
		t.Fatalf("the token list shows hashes: %s", body)
	}

	resp, body = do(http.MethodDelete, "/v1/tokens/ci", nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	resp, body = do(http.MethodGet, "/v1/nodes", nil, created.Token)
	expect(t, resp, body, http.StatusUnauthorized, nil)
	resp, body = do(http.MethodDelete, "/v1/tokens/ci", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
}

// TestTokenUsesAreBatched: many uses make one write with the latest time.
func TestTokenUsesAreBatched(t *testing.T) {
	var mu sync.Mutex
	var batches []map[string]time.Time
	u := newTokenUses(time.Hour, func(_ context.Context, uses map[string]time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, uses)
		return nil
	}, func(err error) { t.Error(err) })
	t1 := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	for i := range 1000 {
		u.note("0123456789ab", t1.Add(time.Duration(i)*time.Millisecond))
	}
	u.note("ba9876543210", t1)
	u.flush()
	u.flush() // nothing pending: no write
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 || len(batches[0]) != 2 || !batches[0]["0123456789ab"].Equal(t1.Add(999*time.Millisecond)) {
		t.Fatalf("batches %v", batches)
	}
}

// TestUserTokenFollowsItsUser: a user's token loses rights with the user
// and stops working when the user is removed.
func TestUserTokenFollowsItsUser(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	do := func(method, path string, body any, key string) (*http.Response, []byte) {
		return call(t, srv, method, path, body, key)
	}
	resp, body := do(http.MethodPost, "/v1/users", control.UserRequest{Name: "ann", Password: "ann-password-1", Role: raftfsm.RoleDeployer}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	resp, body = do(http.MethodPost, "/v1/tokens", control.TokenRequest{Name: "ann-admin", Role: raftfsm.RoleAdmin, User: "ann"}, "")
	expect(t, resp, body, http.StatusBadRequest, nil)
	var created control.TokenCreated
	resp, body = do(http.MethodPost, "/v1/tokens", control.TokenRequest{Name: "ann-ci", Role: raftfsm.RoleDeployer, User: "ann"}, "")
	expect(t, resp, body, http.StatusCreated, &created)
	if created.Info.User != "ann" {
		t.Fatalf("created %+v", created.Info)
	}
	resp, body = do(http.MethodPost, "/v1/workspaces", control.NameRequest{Name: "one"}, created.Token)
	expect(t, resp, body, http.StatusCreated, nil)

	resp, body = do(http.MethodPost, "/v1/users", control.UserRequest{Name: "ann", Role: raftfsm.RoleViewer}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	resp, body = do(http.MethodPost, "/v1/workspaces", control.NameRequest{Name: "two"}, created.Token)
	expect(t, resp, body, http.StatusForbidden, nil)
	resp, body = do(http.MethodGet, "/v1/nodes", nil, created.Token)
	expect(t, resp, body, http.StatusOK, nil)

	resp, body = do(http.MethodDelete, "/v1/users/ann", nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	resp, body = do(http.MethodGet, "/v1/nodes", nil, created.Token)
	expect(t, resp, body, http.StatusUnauthorized, nil)
}

// TestCapAddIsAdminOnly: a deployer token's spec with cap_add is 403 with
// a message naming it, and reaches nothing; a malformed capability is 400;
// the cluster key (admin) deploys it.
func TestCapAddIsAdminOnly(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	do := func(method, path string, body any, key string) (*http.Response, []byte) {
		return call(t, srv, method, path, body, key)
	}
	deployer := createToken(t, do, "ci", raftfsm.RoleDeployer).Token
	spec := mustSpecJSON(t)
	spec.CapAdd = []string{"NET_ADMIN"}

	before, calls := fake.StateJSON(), len(fake.Calls())
	resp, body := do(http.MethodPost, "/v1/services", spec, deployer)
	expect(t, resp, body, http.StatusForbidden, nil)
	if e := errorOf(t, body); e.Error != control.CodeForbidden || !strings.Contains(e.Message, "cap_add NET_ADMIN") || !strings.Contains(e.Message, "admin") {
		t.Errorf("error %+v", e)
	}
	bad := spec
	bad.CapAdd = []string{"ALL"}
	resp, body = do(http.MethodPost, "/v1/services", bad, "")
	expect(t, resp, body, http.StatusBadRequest, nil)
	if fake.StateJSON() != before || len(fake.Calls()) != calls {
		t.Fatalf("refused deploys changed the state or reached the controller: %v", fake.Calls()[calls:])
	}

	resp, body = do(http.MethodPost, "/v1/services", spec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	spec.CapAdd = nil
	resp, body = do(http.MethodPost, "/v1/services", spec, deployer)
	expect(t, resp, body, http.StatusAccepted, nil)
}
