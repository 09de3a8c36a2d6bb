package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
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
	// Names are resolved before anything is stored: one that points at the
	// metadata service or the VPC is refused like the address.
	named := newTestServer(t, f, func(o *Options) {
		o.LookupHost = func(_ context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "metadata.example.test":
				return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
			case "registry.example.test":
				return []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.110.0.4")}, nil
			}
			return nil, errors.New("no such host")
		}
	})
	resp, body := call(t, named, http.MethodPost, "/v1/webhooks", map[string]any{"url": "http://metadata.example.test/latest/user-data"}, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "resolves to 169.254.169.254") {
		t.Errorf("webhook at a name of the metadata service: %d %s, want 400 naming the address", resp.StatusCode, body)
	}
	resp, body = call(t, named, http.MethodPost, "/v1/registries", control.RegistryRequest{Registry: "registry.example.test:5000", Username: "bot", Password: "pw"}, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "resolves to 10.110.0.4") {
		t.Errorf("registry at a name with a VPC address: %d %s, want 400 naming the address", resp.StatusCode, body)
	}
	f.View(func(s *raftfsm.State) {
		if len(s.Webhooks) != 0 || len(s.Registries) != 0 {
			t.Fatalf("refusals stored %d webhooks, %d registries", len(s.Webhooks), len(s.Registries))
		}
	})
	resp, body = call(t, srv, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/x"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
	// A name the resolver does not know yet is accepted (dial time checks it).
	resp, body = call(t, named, http.MethodPost, "/v1/registries", control.RegistryRequest{Registry: "unknown.example.test", Username: "bot", Password: "pw"}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
}
