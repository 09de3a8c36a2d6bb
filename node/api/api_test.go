package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// samplePath fills the parameters of a Gin path with plausible values.
func samplePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = map[string]string{":ws": "default", ":project": "shop", ":env": "prod", ":service": "web",
				":digest": "sha256:" + strings.Repeat("a", 64), ":registry": "registry.example.com"}[s]
			if parts[i] == "" {
				parts[i] = "x1"
			}
		}
	}
	return strings.Join(parts, "/")
}

func TestEveryRouteButPingNeedsTheKey(t *testing.T) {
	fake := apitest.NewFake("node-1")
	h := newHandler(t, fake, func(o *Options) { o.Limits.AuthFailures = 100000 })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	routes := h.(*gin.Engine).Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	access := map[string]Access{}
	for _, r := range Routes(Options{Controller: fake, APIKey: testKey}) {
		access[r.Method+" "+ginPath(r.Path)] = r.access()
	}
	before := fake.StateJSON()
	for _, r := range routes {
		path := samplePath(r.Path)
		for _, key := range []string{"-", "wrong-key"} {
			resp, body := call(t, srv, r.Method, path, nil, key)
			if r.Path == "/ping" {
				expect(t, resp, body, http.StatusOK, nil)
				continue
			}
			if r.Path == "/v1/bootstrap/claim" {
				// Public: it proves the bootstrap token instead; the fake is no seed.
				expect(t, resp, body, http.StatusNotFound, nil)
				continue
			}
			switch access[r.Method+" "+r.Path] {
			case AccessNone:
				// The join token in the body is the credential (no enroller here).
				if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode < 400 {
					t.Errorf("%s %s: status %d; body %s", r.Method, path, resp.StatusCode, body)
				}
				continue
			case AccessNode:
				// Internal: refused for want of a node certificate before the key is looked at.
				if e := errorOf(t, body); resp.StatusCode != http.StatusForbidden || e.Error != control.CodeForbidden {
					t.Errorf("%s %s with key %q: status %d, want 403; body %s", r.Method, path, key, resp.StatusCode, body)
				}
				continue
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with key %q: status %d, want 401; body %s", r.Method, path, key, resp.StatusCode, body)
				continue
			}
			if e := errorOf(t, body); e.Error != control.CodeUnauthorized {
				t.Errorf("%s %s: error %q", r.Method, path, e.Error)
			}
		}
	}
	// A Bearer key with the wrong scheme is refused too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/nodes", nil)
	req.Header.Set("Authorization", "Basic "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Basic scheme: status %d", resp.StatusCode)
	}
	if fake.StateJSON() != before {
		t.Fatal("unauthenticated requests changed the state")
	}
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("unauthenticated requests reached the controller %d times: %v", n, fake.Calls())
	}
}

func TestUnknownRoutesNeedTheKeyToo(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	resp, body := call(t, srv, http.MethodGet, "/v1/nothing-here", nil, "-")
	expect(t, resp, body, http.StatusUnauthorized, nil)
	resp, body = call(t, srv, http.MethodGet, "/v1/nothing-here", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
	resp, body = call(t, srv, http.MethodPut, "/v1/nodes", nil, "")
	expect(t, resp, body, http.StatusMethodNotAllowed, nil)
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{APIKey: "k"}); err == nil {
		t.Fatal("no controller accepted")
	}
	if _, err := New(Options{Controller: apitest.NewFake("node-1")}); err == nil {
		t.Fatal("no key accepted")
	}
	dup := Route{Method: http.MethodGet, Path: "/v1/nodes", Summary: "again", Handler: func(*gin.Context) {}}
	if _, err := New(Options{Controller: apitest.NewFake("node-1"), APIKey: "k", Extra: []Route{dup}}); err == nil {
		t.Fatal("a duplicate route was accepted")
	}
	clash := Route{Method: http.MethodDelete, Path: "/v1/nodes/*rest", Summary: "clashes with {id}", Handler: func(*gin.Context) {}}
	if _, err := New(Options{Controller: apitest.NewFake("node-1"), APIKey: "k", Extra: []Route{clash}}); err == nil {
		t.Fatal("a conflicting route was accepted")
	}
}

func TestDeployReadAndUndeploy(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)

	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	var res raftfsm.DeployResult
	expect(t, resp, body, http.StatusAccepted, &res)
	if res.DeployID == "" || res.Generation != 1 || res.Service != apitest.FakeDefaultWorkspaceID+"/shop/prod/web" {
		t.Fatalf("deploy result %+v", res)
	}
	if call := fake.Calls()[0]; call.Arg.(control.DeployRequest).Actor != "api" {
		t.Fatalf("actor %+v", call)
	}

	var detail control.ServiceDetail
	resp, body = call(t, srv, http.MethodGet, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusOK, &detail)
	if detail.Name != "shop/prod/web" || len(detail.Instances) != 2 || len(detail.Placement) != 2 || detail.LastDeploy == nil || detail.LastDeploy.ID != res.DeployID {
		t.Fatalf("detail %+v", detail)
	}
	if got := detail.Service.Spec.SealedSecrets["DB_PASSWORD"]; got != control.SecretSet {
		t.Fatalf("sealed secret shown as %q", got)
	}
	if bytes.Contains(body, []byte("v1:")) || bytes.Contains(body, []byte("s3cret")) {
		t.Fatalf("the answer leaks a secret: %s", body)
	}
	if resp.Header.Get(control.HeaderIndex) == "" {
		t.Fatal("no X-Dropmesh-Index on a read")
	}
	// The workspace id works as well as its name.
	resp, body = call(t, srv, http.MethodGet, "/v1/services/"+apitest.FakeDefaultWorkspaceID+"/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusOK, nil)

	var health control.ServiceHealth
	resp, body = call(t, srv, http.MethodGet, "/v1/services/default/shop/prod/web/health", nil, "")
	expect(t, resp, body, http.StatusOK, &health)
	if health.Service != "shop/prod/web" || len(health.Instances) != 2 || health.Instances[0].Status != raftfsm.HealthStarting {
		t.Fatalf("health %+v", health)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	inst := raw["instances"].([]any)[0].(map[string]any)
	for _, k := range []string{"node", "container", "status", "reason", "restarts", "history"} {
		if _, ok := inst[k]; !ok {
			t.Errorf("health instance lacks %q: %v", k, inst)
		}
	}

	var progress control.DeployProgress
	resp, body = call(t, srv, http.MethodGet, "/v1/deploys/"+res.DeployID, nil, "")
	expect(t, resp, body, http.StatusOK, &progress)
	if progress.Done || len(progress.Instances) != 2 {
		t.Fatalf("progress %+v", progress)
	}
	var deploys []raftfsm.Deploy
	resp, body = call(t, srv, http.MethodGet, "/v1/deploys?service=shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusOK, &deploys)
	if len(deploys) != 1 {
		t.Fatalf("deploys %+v", deploys)
	}
	var instances []raftfsm.Instance
	resp, body = call(t, srv, http.MethodGet, "/v1/instances?service=default/shop/prod/web&node=node-2", nil, "")
	expect(t, resp, body, http.StatusOK, &instances)
	if len(instances) != 1 || instances[0].Node != "node-2" {
		t.Fatalf("instances %+v", instances)
	}
	var services []raftfsm.Service
	resp, body = call(t, srv, http.MethodGet, "/v1/services?workspace=default", nil, "")
	expect(t, resp, body, http.StatusOK, &services)
	if len(services) != 1 {
		t.Fatalf("services %+v", services)
	}

	resp, body = call(t, srv, http.MethodPost, "/v1/services/default/shop/prod/web/restart", nil, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	resp, body = call(t, srv, http.MethodDelete, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	resp, body = call(t, srv, http.MethodGet, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
	if e := errorOf(t, body); e.Error != control.CodeNotFound || !strings.Contains(e.Message, "shop/prod/web") {
		t.Fatalf("error %+v", e)
	}
	resp, body = call(t, srv, http.MethodDelete, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
}

func TestStaleGenerationIsAConflict(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	resp, body = call(t, srv, http.MethodPost, "/v1/services?expect_generation=7", webSpec, "")
	expect(t, resp, body, http.StatusConflict, nil)
	if e := errorOf(t, body); e.Error != control.CodeConflict {
		t.Fatalf("error %+v", e)
	}
}

func TestWorkspacesProjectsEnvironments(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	var ws control.WorkspaceInfo
	resp, body := call(t, srv, http.MethodPost, "/v1/workspaces", control.NameRequest{Name: "demo"}, "")
	expect(t, resp, body, http.StatusCreated, &ws)
	resp, body = call(t, srv, http.MethodPost, "/v1/workspaces/demo/projects", control.NameRequest{Name: "shop"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
	resp, body = call(t, srv, http.MethodPost, "/v1/workspaces/"+ws.ID+"/projects/shop/envs", control.NameRequest{Name: "staging"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
	var got control.WorkspaceInfo
	resp, body = call(t, srv, http.MethodGet, "/v1/workspaces/demo", nil, "")
	expect(t, resp, body, http.StatusOK, &got)
	if got.ID != ws.ID || len(got.Projects) != 1 || got.Projects[0].Name != "shop" || !slices.Equal(got.Projects[0].Envs, []string{"staging"}) {
		t.Fatalf("workspace %+v", got)
	}
	var list []control.WorkspaceSummary
	resp, body = call(t, srv, http.MethodGet, "/v1/workspaces", nil, "")
	expect(t, resp, body, http.StatusOK, &list)
	if len(list) != 2 {
		t.Fatalf("workspaces %+v", list)
	}
	resp, body = call(t, srv, http.MethodPost, "/v1/workspaces", control.NameRequest{Name: "demo"}, "")
	expect(t, resp, body, http.StatusConflict, nil)
	resp, body = call(t, srv, http.MethodDelete, "/v1/workspaces/demo", nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	resp, body = call(t, srv, http.MethodGet, "/v1/workspaces/demo", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
}

func TestSecretsNeverShown(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	token := "do-token-value-123"
	resp, body := call(t, srv, http.MethodPatch, "/v1/settings", map[string]any{"do_token": token, "domain": "example.com"}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	var st raftfsm.Settings
	resp, body = call(t, srv, http.MethodGet, "/v1/settings", nil, "")
	expect(t, resp, body, http.StatusOK, &st)
	if st.DOToken != control.SecretSet || st.CFToken != "" || st.Domain != "example.com" {
		t.Fatalf("settings %+v", st)
	}
	if bytes.Contains(body, []byte("v1:")) || bytes.Contains(body, []byte(token)) {
		t.Fatalf("settings leak the token: %s", body)
	}

	resp, body = call(t, srv, http.MethodPost, "/v1/users", control.UserRequest{Name: "ann", Password: "correct horse", Role: raftfsm.RoleDeployer}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	var users []control.UserInfo
	resp, body = call(t, srv, http.MethodGet, "/v1/users", nil, "")
	expect(t, resp, body, http.StatusOK, &users)
	if len(users) != 2 || bytes.Contains(body, []byte("$2")) || bytes.Contains(body, []byte("hash")) {
		t.Fatalf("users %s", body)
	}
	resp, body = call(t, srv, http.MethodDelete, "/v1/users/ann", nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)

	resp, body = call(t, srv, http.MethodPost, "/v1/registries", control.RegistryRequest{Registry: "registry.example.com:5000", Username: "bot", Password: "pw-secret"}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	var regs []control.RegistryInfo
	resp, body = call(t, srv, http.MethodGet, "/v1/registries", nil, "")
	expect(t, resp, body, http.StatusOK, &regs)
	if len(regs) != 1 || regs[0].Username != "bot" || bytes.Contains(body, []byte("pw-secret")) || bytes.Contains(body, []byte("password")) {
		t.Fatalf("registries %s", body)
	}
	resp, body = call(t, srv, http.MethodDelete, "/v1/registries/registry.example.com:5000", nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)
}

func TestWebhooksGetAnID(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	var w raftfsm.Webhook
	resp, body := call(t, srv, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/x", "kinds": []string{"deploy."}}, "")
	expect(t, resp, body, http.StatusCreated, &w)
	if !strings.HasPrefix(w.ID, "hook-") || w.Format != raftfsm.WebhookGeneric || w.CreatedAt.IsZero() {
		t.Fatalf("webhook %+v", w)
	}
	var list []raftfsm.Webhook
	resp, body = call(t, srv, http.MethodGet, "/v1/webhooks", nil, "")
	expect(t, resp, body, http.StatusOK, &list)
	if len(list) != 1 {
		t.Fatalf("webhooks %+v", list)
	}
	resp, body = call(t, srv, http.MethodDelete, "/v1/webhooks/"+w.ID, nil, "")
	expect(t, resp, body, http.StatusNoContent, nil)
}

// A webhook URL is a bearer secret: the state holds it sealed, every API
// answer shows it shortened, the plain export (admin) gives it back whole.
func TestWebhookURLsStaySealed(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	const hook = "https://hooks.slack.com/services/T0AAA/B0BBB/Zx9SlackSecret77"
	resp, body := call(t, srv, http.MethodPost, "/v1/webhooks", map[string]any{"url": hook, "format": "slack"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
	resp, list := call(t, srv, http.MethodGet, "/v1/webhooks", nil, "")
	expect(t, resp, list, http.StatusOK, nil)
	for what, data := range map[string][]byte{"put answer": body, "list": list, "state": []byte(fake.StateJSON())} {
		if bytes.Contains(data, []byte("Zx9SlackSecret77")) || bytes.Contains(data, []byte("T0AAA")) {
			t.Errorf("the %s shows the webhook URL: %s", what, data)
		}
	}
	if !bytes.Contains(list, []byte("https://hooks.slack.com/services/…et77")) {
		t.Errorf("the list lacks the short URL: %s", list)
	}
	resp, plain := call(t, srv, http.MethodGet, "/v1/state/export?secrets=plain", nil, "")
	expect(t, resp, plain, http.StatusOK, nil)
	if !bytes.Contains(plain, []byte(hook)) {
		t.Fatalf("the plain export lacks the webhook URL: %s", plain)
	}
	// It imports into another cluster, where it is sealed again.
	other := apitest.NewFake("node-1")
	srv2 := newTestServer(t, other, nil)
	resp, body = call(t, srv2, http.MethodPost, "/v1/state/import", plain, "")
	expect(t, resp, body, http.StatusOK, nil)
	if st := other.StateJSON(); strings.Contains(st, "Zx9SlackSecret77") || !strings.Contains(st, "sealed_url") {
		t.Fatalf("imported state: %s", st)
	}
}

func TestNodesAndSnapshots(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	var nodes []raftfsm.Node
	resp, body := call(t, srv, http.MethodGet, "/v1/nodes", nil, "")
	expect(t, resp, body, http.StatusOK, &nodes)
	if len(nodes) != 3 || nodes[0].ID != "node-1" {
		t.Fatalf("nodes %+v", nodes)
	}
	var added control.AddedNodes
	resp, body = call(t, srv, http.MethodPost, "/v1/nodes", control.AddNodesRequest{Count: 2, Region: "fra1"}, "")
	expect(t, resp, body, http.StatusAccepted, &added)
	if len(added.Nodes) != 2 {
		t.Fatalf("added %+v", added)
	}
	resp, body = call(t, srv, http.MethodPost, "/v1/nodes/node-3/reboot", nil, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	resp, body = call(t, srv, http.MethodDelete, "/v1/nodes/node-3", nil, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	resp, body = call(t, srv, http.MethodDelete, "/v1/nodes/node-9", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)

	digest := "sha256:" + strings.Repeat("b", 64)
	resp, body = call(t, srv, http.MethodPost, "/v1/snapshots", control.SnapshotRequest{Name: "with-ffmpeg", Context: digest}, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	var snaps []raftfsm.Snapshot
	resp, body = call(t, srv, http.MethodGet, "/v1/snapshots", nil, "")
	expect(t, resp, body, http.StatusOK, &snaps)
	if len(snaps) != 1 || snaps[0].Status != raftfsm.SnapshotBuilding {
		t.Fatalf("snapshots %+v", snaps)
	}

	var cluster control.ClusterInfo
	resp, body = call(t, srv, http.MethodGet, "/v1/cluster", nil, "")
	expect(t, resp, body, http.StatusOK, &cluster)
	if cluster.Leader.ID != "node-1" || len(cluster.Members) != 2 { // node-3 was removed above
		t.Fatalf("cluster %+v", cluster)
	}
	var stats control.NodeStats
	resp, body = call(t, srv, http.MethodGet, "/v1/agent/stats", nil, "")
	expect(t, resp, body, http.StatusOK, &stats)
	if stats.Node != "node-1" {
		t.Fatalf("stats %+v", stats)
	}
}

func TestEvents(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	var all []raftfsm.Event
	resp, body = call(t, srv, http.MethodGet, "/v1/events", nil, "")
	expect(t, resp, body, http.StatusOK, &all)
	if len(all) < 4 {
		t.Fatalf("events %+v", all)
	}
	var deploys []raftfsm.Event
	resp, body = call(t, srv, http.MethodGet, "/v1/events?kind=deploy.&service=shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusOK, &deploys)
	if len(deploys) != 1 || deploys[0].Kind != raftfsm.EventDeployStarted {
		t.Fatalf("deploy events %+v", deploys)
	}
	var page []raftfsm.Event
	resp, body = call(t, srv, http.MethodGet, "/v1/events?since=1&limit=2", nil, "")
	expect(t, resp, body, http.StatusOK, &page)
	if len(page) != 2 || page[0].Seq != 2 || page[1].Seq != 3 {
		t.Fatalf("page %+v", page)
	}
	var newest []raftfsm.Event
	resp, body = call(t, srv, http.MethodGet, "/v1/events?limit=1", nil, "")
	expect(t, resp, body, http.StatusOK, &newest)
	if len(newest) != 1 || newest[0].Seq != all[len(all)-1].Seq {
		t.Fatalf("newest %+v", newest)
	}
}

func TestStateExportImportRoundTrip(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)

	resp, sealed := call(t, srv, http.MethodGet, "/v1/state/export", nil, "")
	expect(t, resp, sealed, http.StatusOK, nil)
	// Without secrets=plain no secret is there, not even sealed.
	for _, word := range []string{"s3cret", "DB_PASSWORD", "sealed_secrets", "v1:"} {
		if bytes.Contains(sealed, []byte(word)) {
			t.Fatalf("export without secrets=plain shows %q", word)
		}
	}
	resp, plain := call(t, srv, http.MethodGet, "/v1/state/export?secrets=plain", nil, "")
	expect(t, resp, plain, http.StatusOK, nil)
	if !bytes.Contains(plain, []byte("s3cret")) {
		t.Fatal("export with secrets=plain lacks the secret")
	}

	other := apitest.NewFake("node-1")
	srv2 := newTestServer(t, other, nil)
	var res raftfsm.ImportResult
	resp, body = call(t, srv2, http.MethodPost, "/v1/state/import", plain, "")
	expect(t, resp, body, http.StatusOK, &res)
	if len(res.Services) != 1 {
		t.Fatalf("import %+v", res)
	}
	resp, body = call(t, srv2, http.MethodGet, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

func TestInternalCommands(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	var res raftfsm.DeployResult
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, &res)

	report, err := raftfsm.Encode(&raftfsm.ReportInstances{At: time.Now().UTC(), Node: "node-1",
		Reports: []raftfsm.InstanceReport{{Instance: res.Service + "#0", Generation: 1, Container: "c0", State: "running", Phase: "ready"}}})
	if err != nil {
		t.Fatal(err)
	}
	kit := testCluster()
	agent := kit.agentClient(kit.node(t, "node-1"))
	resp, body = callWith(t, agent, srv, http.MethodPost, "/v1/internal/commands", report, "")
	expect(t, resp, body, http.StatusOK, nil)
	var phase string
	fake.View(func(s *raftfsm.State) { phase = s.Instances[res.Service+"#0"].Phase })
	if phase != "ready" {
		t.Fatalf("phase %q after the report", phase)
	}

	before := fake.StateJSON()
	notReport, _ := raftfsm.Encode(&raftfsm.DeleteUser{At: time.Now().UTC(), Name: "admin"})
	resp, body = callWith(t, agent, srv, http.MethodPost, "/v1/internal/commands", notReport, "")
	expect(t, resp, body, http.StatusBadRequest, nil)
	if !strings.Contains(errorOf(t, body).Message, "not an agent report") {
		t.Fatalf("message %s", body)
	}
	for _, garbage := range [][]byte{{}, {9, 9}, {1, 200, '{', '}'}, append([]byte{1, byte(raftfsm.CmdReportHealth)}, "{not json"...)} {
		resp, body = callWith(t, agent, srv, http.MethodPost, "/v1/internal/commands", garbage, "")
		expect(t, resp, body, http.StatusBadRequest, nil)
	}
	if fake.StateJSON() != before {
		t.Fatal("refused commands changed the state")
	}
}

func TestProbe(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	kit := testCluster()
	agent := kit.agentClient(kit.node(t, "node-2"))
	resp, body := callWith(t, agent, srv, http.MethodGet, "/v1/internal/probe?addr=127.0.0.1:8080&path=/health", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	fake.SetProbeError(errors.New("connection refused"))
	resp, body = callWith(t, agent, srv, http.MethodGet, "/v1/internal/probe?addr=127.0.0.1:8080", nil, "")
	expect(t, resp, body, http.StatusBadGateway, nil)
	if e := errorOf(t, body); e.Error != control.CodeProbeFailed || !strings.Contains(e.Message, "connection refused") {
		t.Fatalf("error %+v", e)
	}
	resp, body = callWith(t, agent, srv, http.MethodGet, "/v1/internal/probe", nil, "")
	expect(t, resp, body, http.StatusBadRequest, nil)
}

func TestInternalErrorsAreGenericAndPanicsRecovered(t *testing.T) {
	fake := apitest.NewFake("node-1")
	boom := Route{Method: http.MethodGet, Path: "/v1/boom", Summary: "panics", Kind: RouteRead, Handler: func(*gin.Context) { panic("kaboom") }}
	srv := newTestServer(t, fake, func(o *Options) { o.Extra = []Route{boom} })
	fake.FailNext("Deploy", errors.New("database on fire at 10.0.0.9"))
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusInternalServerError, nil)
	if e := errorOf(t, body); e.Error != control.CodeInternal || strings.Contains(e.Message, "fire") {
		t.Fatalf("internal error shows details: %+v", e)
	}
	resp, body = call(t, srv, http.MethodGet, "/v1/boom", nil, "")
	expect(t, resp, body, http.StatusInternalServerError, nil)
	if e := errorOf(t, body); e.Error != control.CodeInternal || strings.Contains(e.Message, "kaboom") {
		t.Fatalf("panic answer %+v", e)
	}
}

func TestStatusesOfControllerErrors(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{control.ErrForbidden, http.StatusForbidden, control.CodeForbidden},
		{control.ErrNoLeader, http.StatusServiceUnavailable, control.CodeNoLeader},
		{control.ErrNotLeader, http.StatusServiceUnavailable, control.CodeNotLeader},
		// A write a deposed leader may still have committed: not "nothing changed".
		{fmt.Errorf("apply put_registry: %w: leadership lost while committing", raftfsm.ErrOutcomeUnknown), http.StatusBadGateway, control.CodeOutcomeUnknown},
		{errors.Join(errors.New("apply"), contextDeadline()), http.StatusGatewayTimeout, control.CodeTimeout},
	} {
		fake.FailNext("Undeploy", tc.err)
		resp, body := call(t, srv, http.MethodDelete, "/v1/services/default/shop/prod/web", nil, "")
		expect(t, resp, body, tc.status, nil)
		if e := errorOf(t, body); e.Error != tc.code {
			t.Errorf("%v: code %s, want %s", tc.err, e.Error, tc.code)
		}
		if control.Retryable(tc.code) && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%v: Retry-After %q", tc.err, resp.Header.Get("Retry-After"))
		}
	}
}

func TestBadInputsAre400AndChangeNothing(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	big := bytes.Repeat([]byte("a"), 10<<20)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"semicolon in project", "GET", "/v1/services/default/sh;op/prod/web", nil, 400, "project"},
		{"brace in env", "DELETE", "/v1/services/default/shop/pr%7Dod/web", nil, 400, "environment"},
		{"space in service", "POST", "/v1/services/default/shop/prod/we%20b/restart", nil, 400, "service"},
		{"cyrillic e", "DELETE", "/v1/services/default/shop/prod/w%D0%B5b", nil, 400, "service"},
		{"slash in a segment", "GET", "/v1/services/default/shop%2Fx/prod/web", nil, 400, "service name"},
		{"uppercase workspace", "GET", "/v1/services/Default/shop/prod/web/health", nil, 400, "workspace"},
		{"unknown spec field", "POST", "/v1/services", webSpec + "colour: blue\n", 400, "colour"},
		{"wrong type", "POST", "/v1/services", strings.Replace(webSpec, "replicas: 2", "replicas: two", 1), 400, "replicas"},
		{"bad service name in spec", "POST", "/v1/services", strings.Replace(webSpec, "service: web", "service: \"web;rm -rf\"", 1), 400, "service"},
		{"cyrillic in spec", "POST", "/v1/services", strings.Replace(webSpec, "service: web", "service: wеb", 1), 400, "service"},
		{"local build path", "POST", "/v1/services", strings.Replace(webSpec, "image: 127.0.0.1:5000/shop/web:1.4", "build: ./app", 1), 400, "build"},
		{"empty spec", "POST", "/v1/services", "", 400, "empty"},
		{"json spec with unknown field", "POST", "/v1/services", `{"project":"shop","env":"prod","service":"web","image":"redis:7","bogus":1}`, 400, "bogus"},
		{"10 MB spec", "POST", "/v1/services", big, 413, "larger"},
		{"10 MB settings", "PATCH", "/v1/settings", big, 413, "larger"},
		{"unknown query parameter", "GET", "/v1/services?colour=blue", nil, 400, "colour"},
		{"repeated query parameter", "GET", "/v1/services?workspace=a&workspace=b", nil, 400, "2 times"},
		{"bad limit", "GET", "/v1/events?limit=abc", nil, 400, "limit"},
		{"negative since", "GET", "/v1/events?since=-1", nil, 400, "since"},
		{"bad kind", "GET", "/v1/events?kind=DEPLOY%3B", nil, 400, "kind"},
		{"bad tail", "GET", "/v1/containers/c1/logs?tail=-5", nil, 400, "tail"},
		{"bad follow", "GET", "/v1/containers/c1/logs?follow=maybe", nil, 400, "follow"},
		{"bad since time", "GET", "/v1/containers/c1/health?since=yesterday", nil, 400, "since"},
		{"bad port", "GET", "/v1/containers/c1/health?port=70000", nil, 400, "port"},
		{"bad container", "GET", "/v1/containers/C1;ls/logs", nil, 400, "container"},
		{"bad index", "GET", "/v1/deploys?index=abc", nil, 400, "index"},
		{"wait without index", "GET", "/v1/deploys?wait=5s", nil, 400, "index"},
		{"bad wait", "GET", "/v1/deploys?index=1&wait=forever", nil, 400, "wait"},
		{"bad consistent", "GET", "/v1/nodes?consistent=perhaps", nil, 400, "consistent"},
		{"origin cert zone with a brace", "PUT", "/v1/origin-certs/exa%7Dmple.com", map[string]string{"cert_pem": "x", "key_pem": "y"}, 400, "zone"},
		{"origin cert that is not PEM", "PUT", "/v1/origin-certs/example.com", map[string]string{"cert_pem": "x", "key_pem": "y"}, 400, "origin certificate"},
		{"origin cert unknown field", "PUT", "/v1/origin-certs/example.com", map[string]string{"cert": "x"}, 400, "cert"},
		{"bad secrets value", "GET", "/v1/state/export?secrets=yes", nil, 400, "plain"},
		{"bad service filter", "GET", "/v1/instances?service=shop/prod", nil, 400, "service name"},
		{"bad workspace name", "POST", "/v1/workspaces", control.NameRequest{Name: "Bad Name"}, 400, "workspace"},
		{"unknown body field", "POST", "/v1/workspaces", map[string]any{"name": "ok", "extra": 1}, 400, "extra"},
		{"two documents", "POST", "/v1/workspaces", `{"name":"a"}{"name":"b"}`, 400, "more than one"},
		{"body not an object", "POST", "/v1/workspaces", `[1,2]`, 400, "JSON"},
		{"too many nodes", "POST", "/v1/nodes", control.AddNodesRequest{Count: 1000}, 400, "count"},
		{"bad region", "POST", "/v1/nodes", control.AddNodesRequest{Count: 1, Region: "mars"}, 400, "region"},
		{"bad node id", "POST", "/v1/nodes/Node_1/reboot", nil, 400, "node id"},
		{"bad role", "POST", "/v1/users", map[string]any{"name": "bob", "role": "god"}, 400, "role"},
		{"bad user name", "DELETE", "/v1/users/Bob%20Smith", nil, 400, "user name"},
		{"bad deploy id", "GET", "/v1/deploys/a%20b", nil, 400, "deploy id"},
		{"bad digest", "GET", "/v1/contexts/md5:abc", nil, 400, "sha256"},
		{"bad snapshot name", "POST", "/v1/snapshots", control.SnapshotRequest{Name: "Bad Name", Context: "sha256:" + strings.Repeat("c", 64)}, 400, "snapshot name"},
		{"bad registry", "DELETE", "/v1/registries/evil%20host", nil, 400, "registry"},
		{"bad state document", "POST", "/v1/state/import", `{"kind":"something-else","format":1}`, 400, "kind"},
		{"unknown state field", "POST", "/v1/state/import", `{"kind":"dropmesh-state","format":1,"surprise":true}`, 400, "surprise"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, idx := fake.StateJSON(), fake.Index()
			resp, body := call(t, srv, tc.method, tc.path, tc.body, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			e := errorOf(t, body)
			if !strings.Contains(e.Message, tc.want) {
				t.Fatalf("message %q does not name %q", e.Message, tc.want)
			}
			if fake.Index() != idx || fake.StateJSON() != before {
				t.Fatal("a refused request changed the state")
			}
		})
	}
}

func mustSpec(t testing.TB, doc string) raftfsm.ServiceSpec {
	t.Helper()
	s, err := raftfsm.DecodeSpecBytes([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
