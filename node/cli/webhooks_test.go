package cli

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

const slackHook = "https://hooks.slack.com/services/T0123/B0456/s3cretTokenWXYZ"

// webhooks returns the webhooks in the fake's state.
func (h *harness) webhooks() []raftfsm.Webhook {
	var out []raftfsm.Webhook
	h.fake.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Webhooks) {
			out = append(out, *s.Webhooks[id])
		}
	})
	return out
}

func TestWebhooksAddListRemove(t *testing.T) {
	h := newHarness(t)
	r := h.run("webhooks", "add", slackHook, "--format", "slack", "--events", "deploy.failed, heal.")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("add: %+v", r)
	}
	hooks := h.webhooks()
	if len(hooks) != 1 {
		t.Fatalf("webhooks after add: %+v", hooks)
	}
	slack := hooks[0]
	if !regexp.MustCompile(`^hook-[0-9a-f]{12}$`).MatchString(slack.ID) || slack.URL != "" || !slack.SealedURL.Valid() || slack.Format != raftfsm.WebhookSlack ||
		!slices.Equal(slack.Kinds, []string{"deploy.failed", "heal."}) {
		t.Fatalf("stored %+v", slack)
	}
	want := "added webhook " + slack.ID + " (slack, events: deploy.failed,heal.) posting to https://hooks.slack.com/services/…WXYZ\n"
	if r.stdout != want {
		t.Fatalf("add said %q, want %q", r.stdout, want)
	}
	// Without --format and --events: generic JSON and the default events.
	r = h.run("webhooks", "add", "https://ops.example.com/dropmesh/hook", "--json")
	var generic raftfsm.Webhook
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &generic) != nil || generic.Format != raftfsm.WebhookGeneric || len(generic.Kinds) != 0 || generic.ID == "" {
		t.Fatalf("add generic: %+v", r)
	}

	r = h.run("webhooks")
	if r.code != 0 {
		t.Fatalf("list: %+v", r)
	}
	for _, w := range []string{"ID", "FORMAT", "URL", "EVENTS", slack.ID, "slack", "https://hooks.slack.com/services/…WXYZ", "deploy.failed,heal.",
		generic.ID, "generic", "https://ops.example.com/dropmesh/hook", "default"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("list lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "s3cret") {
		t.Errorf("the list shows the secret part of a URL:\n%s", r.stdout)
	}
	// --json is for scripts, and shows the URLs shortened too: the whole URL
	// is a bearer secret that never leaves the cluster's state in plain.
	r = h.run("webhooks", "--json")
	var listed []raftfsm.Webhook
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed) != 2 {
		t.Fatalf("list --json: %+v", r)
	}
	if i := slices.IndexFunc(listed, func(w raftfsm.Webhook) bool { return w.ID == slack.ID }); i < 0 || listed[i].URL != "https://hooks.slack.com/services/…WXYZ" || strings.Contains(r.stdout, "s3cret") || listed[i].SealedURL != "" {
		t.Fatalf("list --json: %+v", listed)
	}

	if r := h.run("webhooks", "remove", slack.ID); r.code != 0 || r.stdout != "removed webhook "+slack.ID+"\n" {
		t.Fatalf("remove: %+v", r)
	}
	if hooks := h.webhooks(); len(hooks) != 1 || hooks[0].ID != generic.ID {
		t.Fatalf("webhooks after remove: %+v", hooks)
	}
	if r := h.run("webhooks"); r.code != 0 || strings.Contains(r.stdout, slack.ID) {
		t.Fatalf("list after remove: %+v", r)
	}
}

func TestWebhooksBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		// The cluster's refusals, word for word.
		{[]string{"webhooks", "add", "ftp://hooks.example.com/x"}, 1, `dropmesh: webhook url "ftp://hooks.example.com/x": want an http or https URL` + "\n"},
		{[]string{"webhooks", "add", "hooks.example.com/x"}, 1, `dropmesh: webhook url "hooks.example.com/x": want an http or https URL` + "\n"},
		{[]string{"webhooks", "add", slackHook, "--format", "teams"}, 1, `dropmesh: webhook format "teams": want generic, slack or discord` + "\n"},
		{[]string{"webhooks", "remove", "hook-000000000000"}, 1, "dropmesh: webhook hook-000000000000: not found\n"},
		// Mistakes in the command line itself.
		{[]string{"webhooks", "add"}, 2, "dropmesh: accepts 1 arg(s), received 0"},
		{[]string{"webhooks", "frob"}, 2, `dropmesh: unknown command "frob" for "dropmesh webhooks"`},
	} {
		r := h.run(tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("%v: code %d stdout %q stderr %q; want code %d and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.msg)
		}
	}
	if hooks := h.webhooks(); len(hooks) != 0 {
		t.Fatalf("refused input added webhooks: %+v", hooks)
	}
}
