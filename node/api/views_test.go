package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// GET /v1/services answers from the view cached for the state version: the
// same bytes while nothing changes, the new state right after a change, per
// query, and a missing workspace is a 404 every time.
func TestListServicesFollowsTheState(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	list := func(q string) (int, []byte, []raftfsm.Service) {
		t.Helper()
		a := fetch(srv, http.MethodGet, "/v1/services"+q, nil)
		if a.err != nil {
			t.Fatal(a.err)
		}
		var out []raftfsm.Service
		if a.resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(a.body, &out); err != nil {
				t.Fatalf("body %s: %v", a.body, err)
			}
			if ct := a.resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
		}
		return a.resp.StatusCode, a.body, out
	}
	if code, body, out := list(""); code != 200 || len(out) != 0 || string(body) != "[]" {
		t.Fatalf("empty state: %d %s", code, body)
	}
	if _, err := fake.Deploy(t.Context(), controlDeploy(t, webSpec)); err != nil {
		t.Fatal(err)
	}
	_, first, out := list("")
	if len(out) != 1 || out[0].Spec.Service != "web" {
		t.Fatalf("after a deploy: %s", first)
	}
	if bytes.Contains(first, []byte("s3cret")) {
		t.Fatalf("a secret in the answer: %s", first)
	}
	if _, again, _ := list(""); !bytes.Equal(first, again) {
		t.Fatal("two reads of one state version differ")
	}
	if code, _, out := list("?workspace=default"); code != 200 || len(out) != 1 {
		t.Fatalf("?workspace=default: %d %d services", code, len(out))
	}
	for range 2 {
		if code, body, _ := list("?workspace=ghost"); code != http.StatusNotFound || !strings.Contains(string(body), "ghost") {
			t.Fatalf("?workspace=ghost: %d %s", code, body)
		}
	}
	// A second service (on a host of its own: the deploy preparation refuses
	// a host another service serves), then an undeploy: each read sees the
	// change at once.
	apiSpec := strings.Replace(strings.Replace(webSpec, "service: web", "service: api", 1), "shop.example.com", "api.shop.example.com", 1)
	if _, err := fake.Deploy(t.Context(), controlDeploy(t, apiSpec)); err != nil {
		t.Fatal(err)
	}
	_, before, out := list("")
	if len(out) != 2 {
		t.Fatalf("after a second deploy: %s", before)
	}
	if err := fake.Undeploy(t.Context(), "shop/prod/web", "test"); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := list(""); bytes.Equal(before, after) {
		t.Fatal("the answer after an undeploy is the one from before it")
	}
}
