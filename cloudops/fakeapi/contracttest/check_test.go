package contracttest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/contracttest"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
)

func load(t *testing.T) *contracttest.Checker {
	t.Helper()
	c, err := contracttest.Load("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rateHeaders are DigitalOcean's headers on every answer.
func rateHeaders() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "Ratelimit-Limit": {"5000"}, "Ratelimit-Remaining": {"4999"}, "Ratelimit-Reset": {"1800000000"}}
}

func problems(rep contracttest.Report) []string {
	var out []string
	for _, v := range rep.Failed() {
		out = append(out, v.String())
	}
	return out
}

func has(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// The check fails what the real APIs would not answer: a droplet without
// a required field, an answer without DigitalOcean's rate headers, a
// wrong type, a status the operation does not document.
func TestCheckFindsViolations(t *testing.T) {
	c := load(t)
	droplet := `{"droplet":{"id":1,"name":"n","memory":1024,"vcpus":1,"disk":25,"status":"active","created_at":"2026-01-01T00:00:00Z",
		"features":[],"backup_ids":[],"next_backup_window":null,"snapshot_ids":[],"image":{},"volume_ids":[],"size":{},"size_slug":"s",
		"networks":{"v4":[]},"region":{},"tags":[]}}`
	rep := c.Check(context.Background(), []contracttest.Exchange{
		{Method: "GET", Path: "/v2/droplets/1", Status: 200, Header: rateHeaders(), Body: []byte(droplet)},
		{Method: "GET", Path: "/v2/account", Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"account":{"droplet_limit":"many","floating_ip_limit":1,"email":"e","uuid":"u","email_verified":true,"status":"active","status_message":""}}`)},
		{Method: "GET", Path: "/client/v4/zones", Status: 302, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`)},
	})
	got := problems(rep)
	for _, want := range []string{
		`GET /v2/droplets/{droplet_id} -> 200: /droplet/locked: property "locked" is missing`,
		`GET /v2/account -> 200: documented header ratelimit-limit is missing`,
		`GET /v2/account -> 200: /account/droplet_limit: value must be an integer`,
		`cloudflare GET /zones -> 302: status is not supported`,
	} {
		if !has(got, want) {
			t.Errorf("no violation %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if rep.Exchanges != 3 {
		t.Fatalf("checked %d, want 3", rep.Exchanges)
	}
}

// The allow-list covers what it names and nothing else; a path no API
// has is skipped when the fake said 404, reported otherwise.
func TestAllowListAndUnrouted(t *testing.T) {
	c := load(t)
	rec := `{"result":{"id":"a","name":"w.example.test","type":"A","content":"192.0.2.1","proxiable":true,"proxied":false,"ttl":1,
		"comment":null,"tags":[],"meta":{},"created_on":"2026-01-01T00:00:00Z","modified_on":"2026-01-01T00:00:00Z","zone_id":"z","zone_name":"example.test","settings":{}},
		"success":true,"errors":[],"messages":[]}`
	json := http.Header{"Content-Type": {"application/json"}}
	rep := c.Check(context.Background(), []contracttest.Exchange{
		{Method: "GET", Path: "/client/v4/zones/z/dns_records/a", Status: 200, Header: json, Body: []byte(rec)},
		{Method: "GET", Path: "/v2/nothing", Status: 404, Header: json, Body: []byte(`{}`)},
		{Method: "GET", Path: "/v2/nothing", Status: 200, Header: json, Body: []byte(`{}`)},
		{Method: "GET", Path: "/_fake/state", Status: 200},
	})
	var allowed bool
	for _, v := range rep.Violations {
		if strings.Contains(v.Problem, "/comment: Value is not nullable") {
			allowed = v.Allowed != nil && v.Allowed.Evidence != ""
		}
	}
	if !allowed {
		t.Errorf("comment: null not covered by the allow-list: %+v", rep.Violations)
	}
	got := problems(rep)
	if len(got) != 1 || !strings.Contains(got[0], "GET /v2/nothing -> 200: no operation in the spec") {
		t.Fatalf("violations outside the allow-list: %v", got)
	}
	if rep.Skipped != 2 {
		t.Fatalf("skipped %d, want the 404 and /_fake", rep.Skipped)
	}
}

// The recorder keeps what the fake served, bodies included, and the fake's
// own answers pass.
func TestRecorderAndTheFakeAgree(t *testing.T) {
	var rec contracttest.Recorder
	_, url := fakeapitest.StartWrapped(t, fakeapi.Options{}, rec.Wrap)
	for _, p := range []string{"/v2/account", "/v2/regions", "/v2/sizes", "/v2/droplets", "/v2/images?type=distribution"} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url+p, nil)
		req.Header.Set("Authorization", "Bearer "+fakeapi.DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	exs := rec.Exchanges()
	if len(exs) != 5 || exs[0].Path != "/v2/account" || exs[0].Status != 200 || len(exs[0].Body) == 0 || exs[4].RawQuery != "type=distribution" {
		t.Fatalf("recorded %+v", exs)
	}
	rep := load(t).Check(context.Background(), exs)
	if f := rep.Failed(); len(f) != 0 || rep.Exchanges != 5 {
		t.Fatalf("the fake's catalogue answers: %d checked, violations %v", rep.Exchanges, f)
	}
}
