package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// openAPIPath turns Gin's ":id" back into "{id}".
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

func TestOpenAPIListsExactlyTheRegisteredRoutes(t *testing.T) {
	extra := Route{Method: http.MethodGet, Path: "/metrics", Summary: "Prometheus metrics", Kind: RouteLocal, ResponseType: "text/plain",
		Handler: func(c *gin.Context) { c.String(http.StatusOK, "up 1\n") }}
	h := newHandler(t, apitest.NewFake("node-1"), func(o *Options) { o.Extra = []Route{extra} })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	resp, body := call(t, srv, http.MethodGet, "/v1/openapi.json", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Info       map[string]any                       `json:"info"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	if doc.Components.SecuritySchemes["bearer"] == nil {
		t.Fatal("no bearer security scheme")
	}
	var documented, registered []string
	for path, item := range doc.Paths {
		for method, op := range item {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			sec, _ := op["security"].([]any)
			noAuth := path == "/ping" || path == "/v1/join" || path == "/v1/bootstrap/claim"
			if noAuth && len(sec) != 0 {
				t.Errorf("%s has security %v, want none", path, sec)
			}
			if !noAuth && (len(sec) != 1 || sec[0].(map[string]any)["bearer"] == nil) {
				t.Errorf("%s %s: security %v, want bearer", method, path, sec)
			}
			if role, _ := op["x-dropmesh-role"].(string); !noAuth && !raftfsm.Role(role).Valid() {
				t.Errorf("%s %s: x-dropmesh-role %q, want the route's least role", method, path, role)
			}
			if op["summary"] == "" || op["responses"] == nil || op["operationId"] == "" {
				t.Errorf("%s %s: incomplete operation %v", method, path, op)
			}
			// Every {param} of the path is declared.
			params, _ := op["parameters"].([]any)
			for _, seg := range strings.Split(path, "/") {
				if !strings.HasPrefix(seg, "{") {
					continue
				}
				name := strings.Trim(seg, "{}")
				if !slices.ContainsFunc(params, func(p any) bool {
					m := p.(map[string]any)
					return m["name"] == name && m["in"] == "path" && m["required"] == true
				}) {
					t.Errorf("%s %s: path parameter %s not declared", method, path, name)
				}
			}
		}
	}
	for _, r := range h.(*gin.Engine).Routes() {
		registered = append(registered, r.Method+" "+openAPIPath(r.Path))
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Fatalf("documented routes differ from registered ones:\ndocumented %v\nregistered %v", documented, registered)
	}
	if !slices.Contains(documented, "GET /metrics") {
		t.Fatal("the extra route is not documented")
	}
	// Every $ref resolves.
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					refs = append(refs, e.(string))
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	walk(raw)
	if len(refs) == 0 {
		t.Fatal("no schema references at all")
	}
	for _, ref := range refs {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if doc.Components.Schemas[name] == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
	// The spec schema is reflected from the Go type.
	spec, _ := doc.Components.Schemas["raftfsm.ServiceSpec"].(map[string]any)
	props, _ := spec["properties"].(map[string]any)
	for _, field := range []string{"image", "port", "hosts", "replicas", "health"} {
		if props[field] == nil {
			t.Errorf("raftfsm.ServiceSpec schema lacks %s: %v", field, props)
		}
	}
	// The extra route got the same auth.
	resp, body = call(t, srv, http.MethodGet, "/metrics", nil, "-")
	expect(t, resp, body, http.StatusUnauthorized, nil)
	resp, body = call(t, srv, http.MethodGet, "/metrics", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

type node struct {
	Name     string            `json:"name"`
	Children []*node           `json:"children,omitempty"`
	Labels   map[string]string `json:"labels"`
	Hidden   string            `json:"-"`
	secret   string
	embedded
	When  time.Time        `json:"when"`
	Every raftfsm.Duration `json:"every"`
	Blob  []byte           `json:"blob"`
	Any   any              `json:"any"`
}

type embedded struct {
	Flat int `json:"flat"`
}

func TestReflectorFollowsEncodingJSON(t *testing.T) {
	ref := &reflector{schemas: map[string]any{}}
	top := ref.schema(reflect.TypeOf(node{}))
	if top["$ref"] != "#/components/schemas/api.node" {
		t.Fatalf("top %v", top)
	}
	props := ref.schemas["api.node"].(map[string]any)["properties"].(map[string]any)
	for _, absent := range []string{"Hidden", "secret", "embedded", "-"} {
		if props[absent] != nil {
			t.Errorf("%s documented", absent)
		}
	}
	want := map[string]string{"name": "string", "labels": "object", "flat": "integer", "when": "string", "every": "string", "blob": "string"}
	for k, typ := range want {
		p, _ := props[k].(map[string]any)
		if p == nil || p["type"] != typ {
			t.Errorf("%s: %v, want type %s", k, props[k], typ)
		}
	}
	children := props["children"].(map[string]any)
	items := children["items"].(map[string]any)
	if items["nullable"] != true || items["allOf"] == nil {
		t.Fatalf("recursive pointer items %v", items)
	}
	if len(props["any"].(map[string]any)) != 0 {
		t.Fatalf("any %v", props["any"])
	}
	if props["when"].(map[string]any)["format"] != "date-time" || props["blob"].(map[string]any)["format"] != "byte" {
		t.Fatal("formats")
	}
}
