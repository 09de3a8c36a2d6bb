package ui

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
)

// The API's fake controller is the contract the agent fulfils for both
// front ends: the UI works over it as over its own fake.
var _ Node = (*apitest.Fake)(nil)

func TestUIOverTheAPIFake(t *testing.T) {
	fake := apitest.NewFake("node-1")
	s, err := newServer(Options{Node: fake, SessionKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	u := &testUI{t: t, srv: s, ts: newHTTPTest(t, s)}
	c := u.client()
	// Not local mode: the admin's first sign-in starts the cloud setup.
	if r := c.login("admin", "admin-password"); r.Status != http.StatusSeeOther || r.location() != "/setup" {
		t.Fatalf("sign in: %d %q", r.Status, r.location())
	}
	tok := c.token()
	form := sampleForm(tok)
	r := c.postMultipart("/services/deploy", form, nil)
	key := apitest.FakeDefaultWorkspaceID + "/sample/prod/web"
	if r.Status != http.StatusSeeOther || r.location() != servicePath(key) {
		t.Fatalf("deploy: %d %q\n%s", r.Status, r.location(), r.Body)
	}
	if fake.CallCount("Deploy") != 1 {
		t.Fatalf("Deploy calls: %d", fake.CallCount("Deploy"))
	}
	for _, p := range []string{"/", "/services", servicePath(key), "/infrastructure", "/snapshots", "/admin", "/notifications", "/setup"} {
		if r := c.get(p); r.Status != http.StatusOK {
			t.Errorf("GET %s: %d", p, r.Status)
		}
	}
	// The UI makes the webhook's id, as the API does: the node takes it as is.
	if r := c.post("/notifications", url.Values{"csrf_token": {tok}, "url": {"https://hooks.example.com/x"}, "format": {"generic"}}); r.Status != http.StatusSeeOther ||
		fake.CallCount("PutWebhook") != 1 {
		t.Fatalf("add a webhook: %d\n%s", r.Status, r.Body)
	}
	if r := c.post(servicePath(key)+"/undeploy", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("undeploy: %d", r.Status)
	}
	if !strings.Contains(c.get("/").Body, `id="stat-services">0`) {
		t.Errorf("the overview still counts the service")
	}
	// A refusal from the node shows next to the form.
	fake.FailNext("Deploy", control.ErrNotLeader)
	if r := c.postMultipart("/services/deploy", form, nil); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Leadership moved") {
		t.Errorf("deploy refused with not-leader: %d", r.Status)
	}
}
