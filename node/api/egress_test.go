package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestInternalTargetsRefused: a webhook or registry credentials at the
// metadata service, loopback or a private address are refused with a 400
// naming why, and nothing is stored; a public one is accepted.
func TestInternalTargetsRefused(t *testing.T) {
	f := apitest.NewFake("node-1")
	srv := newTestServer(t, f, nil)
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://127.0.0.1:9999/hook",
		"http://[::1]:9999/hook",
		"http://localhost:9999/hook",
		"http://10.0.0.5/hook",
		"http://[fe80::1]/hook",
	} {
		resp, body := call(t, srv, http.MethodPost, "/v1/webhooks", map[string]any{"url": u}, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "refused") {
			t.Errorf("webhook %s: %d %s, want 400 refused", u, resp.StatusCode, body)
		}
	}
	for _, r := range []string{"169.254.169.254", "127.0.0.1:5000", "localhost:5000", "192.168.1.10:5000"} {
		resp, body := call(t, srv, http.MethodPost, "/v1/registries", control.RegistryRequest{Registry: r, Username: "bot", Password: "pw"}, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "refused") {
			t.Errorf("registry %s: %d %s, want 400 refused", r, resp.StatusCode, body)
		}
	}
	f.View(func(s *raftfsm.State) {
		if len(s.Webhooks) != 0 || len(s.Registries) != 0 {
			t.Fatalf("refusals stored %d webhooks, %d registries", len(s.Webhooks), len(s.Registries))
		}
	})
	resp, body := call(t, srv, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/x"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
}
