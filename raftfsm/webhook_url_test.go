package raftfsm

import (
	"errors"
	"strings"
	"testing"
)

func TestShortURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/abcdefghijklmnopqrstWXYZ": "https://hooks.slack.com/services/…WXYZ",
		"https://discord.com/api/webhooks/1234567890/tok_abcdefgh":            "https://discord.com/api/webhooks/…efgh",
		"https://ops.example.com/dropmesh/hook":                               "https://ops.example.com/dropmesh/hook",
		"https://ops.example.com/api/v2/hooks/":                               "https://ops.example.com/api/v2/hooks/",
		"https://ops.example.com/hook?token=abcdef123456":                     "https://ops.example.com/hook?…3456",
		"https://user:pass@ops.example.com/in/42":                             "https://ops.example.com/in/…",
		"http://127.0.0.1:9000":                                               "http://127.0.0.1:9000",
		"::not a url":                                                         "…",
	} {
		if got := (Webhook{URL: in}).ShortURL(); got != want {
			t.Errorf("ShortURL of %q = %q, want %q", in, got, want)
		}
	}
}

// A webhook URL enters the state sealed; an older state's plain URL still
// reads; a sealed webhook command that carries a plain URL changes nothing.
func TestWebhookURLSealed(t *testing.T) {
	f := newFixture(t)
	aead := testAEAD(t)
	w := Webhook{ID: "slack", URL: "https://hooks.slack.com/services/T01/B02/Qx7secret99", Format: WebhookSlack}
	if err := SealWebhookURL(aead, &w); err != nil {
		t.Fatal(err)
	}
	f.must(&PutSealedWebhook{At: t0, Webhook: w})
	if st := f.stateJSON(); strings.Contains(st, "Qx7secret99") || strings.Contains(st, "T01") {
		t.Fatalf("the state shows the webhook URL: %s", st)
	}
	var stored Webhook
	f.view(func(s *State) { stored = *s.Webhooks["slack"] })
	if u, err := WebhookURL(aead, stored); err != nil || u != "https://hooks.slack.com/services/T01/B02/Qx7secret99" {
		t.Fatalf("WebhookURL = %q, %v", u, err)
	}
	if stored.ShortURL() != "https://hooks.slack.com/services/…et99" || stored.Redacted().URL != stored.ShortURL() || stored.Redacted().SealedURL != "" {
		t.Fatalf("short %q, redacted %+v", stored.ShortURL(), stored.Redacted())
	}
	// Moved to another webhook id, the sealed value does not open.
	moved := stored
	moved.ID = "other"
	if _, err := WebhookURL(aead, moved); !errors.Is(err, ErrUnseal) {
		t.Fatalf("moved sealed URL: %v", err)
	}
	for name, bad := range map[string]Webhook{
		"plain url":    {ID: "x", URL: "https://example.com/hook", Short: "https://example.com/hook", Format: WebhookGeneric},
		"both":         {ID: "x", URL: "https://example.com/hook", SealedURL: stored.SealedURL, Short: "s", Format: WebhookGeneric},
		"not sealed":   {ID: "x", SealedURL: "https://example.com", Short: "s", Format: WebhookGeneric},
		"no short url": {ID: "x", SealedURL: stored.SealedURL, Format: WebhookGeneric},
	} {
		before := f.stateJSON()
		if err := f.refuse(&PutSealedWebhook{At: t0, Webhook: bad}); !errors.Is(err, ErrInvalid) || f.stateJSON() != before {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// An older release's plain URL (log replay, old snapshots) still works.
	f.must(&PutWebhook{At: t0, Webhook: Webhook{ID: "legacy", URL: "https://example.com/hooks/abc123def", Format: WebhookGeneric}})
	f.view(func(s *State) { stored = *s.Webhooks["legacy"] })
	if u, err := WebhookURL(aead, stored); err != nil || u != "https://example.com/hooks/abc123def" || stored.Redacted().URL != "https://example.com/hooks/…3def" {
		t.Fatalf("legacy webhook: %q %v %+v", u, err, stored.Redacted())
	}
}
