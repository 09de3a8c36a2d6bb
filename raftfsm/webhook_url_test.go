package raftfsm

import "testing"

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
