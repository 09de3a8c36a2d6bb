package ui

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

const slackHook = "https://hooks.slack.com/services/T0123/B0456/s3cretTokenWXYZ"

// webhooks returns the webhooks in the fake's state.
func (f *fakeNode) webhooks() []raftfsm.Webhook {
	var out []raftfsm.Webhook
	f.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Webhooks) {
			out = append(out, *s.Webhooks[id])
		}
	})
	return out
}

func TestNotificationsAddListRemove(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	page := c.get("/notifications")
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "No webhooks yet.") || !strings.Contains(page.Body, `action="/notifications"`) ||
		!strings.Contains(page.Body, `href="/notifications" aria-current="page"`) {
		t.Fatalf("empty notifications page: %d\n%s", page.Status, page.Body)
	}
	tok := csrfOf(t, page.Body)

	r := c.post("/notifications", url.Values{"csrf_token": {tok}, "url": {slackHook}, "format": {"slack"}, "events": {"deploy.failed, heal."}})
	if r.Status != http.StatusSeeOther || r.location() != "/notifications" {
		t.Fatalf("add: %d %q\n%s", r.Status, r.location(), r.Body)
	}
	hooks := f.webhooks()
	if len(hooks) != 1 {
		t.Fatalf("webhooks after add: %+v", hooks)
	}
	w := hooks[0]
	if !regexp.MustCompile(`^hook-[0-9a-f]{12}$`).MatchString(w.ID) || w.URL != slackHook || w.Format != raftfsm.WebhookSlack ||
		!slices.Equal(w.Kinds, []string{"deploy.failed", "heal."}) {
		t.Fatalf("stored %+v", w)
	}
	if page = c.get("/notifications"); !strings.Contains(page.Body, "Added webhook "+w.ID+" posting to https://hooks.slack.com/services/…WXYZ.") {
		t.Errorf("no message says the webhook was added")
	}
	if r := c.post("/notifications", url.Values{"csrf_token": {tok}, "url": {"https://ops.example.com/dropmesh/hook"}, "format": {"generic"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add generic: %d", r.Status)
	}

	page = c.get("/notifications")
	for _, want := range []string{`data-webhook="` + w.ID + `"`,
		"https://hooks.slack.com/services/…WXYZ", "deploy.failed, heal.", "https://ops.example.com/dropmesh/hook", ">default<",
		`action="/notifications/` + w.ID + `/delete"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page.Body, "s3cret") {
		t.Errorf("the page shows the secret part of a URL")
	}

	if r := c.post("/notifications/"+w.ID+"/delete", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther || r.location() != "/notifications" {
		t.Fatalf("remove: %d %q", r.Status, r.location())
	}
	if hooks := f.webhooks(); len(hooks) != 1 || hooks[0].ID == w.ID {
		t.Fatalf("webhooks after remove: %+v", hooks)
	}
	page = c.get("/notifications")
	if !strings.Contains(page.Body, "Removed webhook "+w.ID+".") || strings.Contains(page.Body, `data-webhook="`+w.ID+`"`) {
		t.Errorf("the removed webhook is still listed, or no message says it went")
	}
}

func TestNotificationsRefuseBadInput(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	tok := c.token()
	for want, form := range map[string]url.Values{
		"Webhook url &#34;ftp://hooks.example.com/x&#34;: want an http or https URL": {"url": {"ftp://hooks.example.com/x"}, "format": {"generic"}},
		"Webhook format &#34;teams&#34;: want generic, slack or discord":             {"url": {slackHook}, "format": {"teams"}, "events": {"deploy."}},
	} {
		form.Set("csrf_token", tok)
		r := c.post("/notifications", form)
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", want, r.Status)
			continue
		}
		if !strings.Contains(r.Body, `<p class="form-error" role="alert">`+want+`</p>`) {
			t.Errorf("%s: the message is not next to the form: %s", want, regexp.MustCompile(`form-error[^<]*`).FindString(r.Body))
		}
		if !strings.Contains(r.Body, `value="`+form.Get("url")+`"`) || !strings.Contains(r.Body, `data-url="/notifications"`) {
			t.Errorf("%s: the form lost the user's input or its address", want)
		}
	}
	// Removing what is not there: an alert, nothing else happens.
	r := c.post("/notifications/hook-000000000000/delete", url.Values{"csrf_token": {tok}})
	if r.Status != http.StatusNotFound || !strings.Contains(r.Body, `class="flash flash-error"`) || !strings.Contains(r.Body, "Webhook hook-000000000000: not found") {
		t.Errorf("remove a missing webhook: %d", r.Status)
	}
	// Without the CSRF token the form is refused before it reaches the node.
	calls := len(f.callList())
	if r := c.post("/notifications", url.Values{"url": {slackHook}, "format": {"slack"}}); r.Status != http.StatusForbidden {
		t.Errorf("add without a CSRF token: %d, want 403", r.Status)
	}
	if len(f.callList()) != calls {
		t.Errorf("a form without its CSRF token reached the node")
	}
	if hooks := f.webhooks(); len(hooks) != 0 {
		t.Fatalf("refused forms added webhooks: %+v", hooks)
	}
}

func TestNotificationsAreForAdmins(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	if err := f.PutUser(t.Context(), controlUser("dave", "deployer")); err != nil {
		t.Fatal(err)
	}
	d := u.client()
	d.mustLogin("dave", "password-dave")
	if r := d.get("/notifications"); r.Status != http.StatusForbidden {
		t.Errorf("a deployer's GET /notifications: %d, want 403", r.Status)
	}
	if r := d.post("/notifications", url.Values{"csrf_token": {d.token()}, "url": {slackHook}, "format": {"slack"}}); r.Status != http.StatusForbidden {
		t.Errorf("a deployer's add: %d, want 403", r.Status)
	}
	if strings.Contains(d.get("/").Body, `href="/notifications"`) {
		t.Errorf("a deployer sees the Notifications link")
	}
	if hooks := f.webhooks(); len(hooks) != 0 {
		t.Fatalf("a deployer added a webhook: %+v", hooks)
	}
}
