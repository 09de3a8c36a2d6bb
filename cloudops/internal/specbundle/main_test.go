package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a repository holding files, committed, and returns its
// path and commit.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "spec"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(out))
}

func TestBundleInlinesAndCleans(t *testing.T) {
	dir, commit := gitRepo(t, map[string]string{
		"spec/root.yaml": `openapi: 3.0.0
info: {title: t, version: "1"}
servers: [{url: "https://api.example"}]
paths:
  /v2/things/{id}:
    get:
      $ref: "res/things_get.yml"
  /v2/other:
    get: {responses: {"200": {description: ok}}}
`,
		"spec/res/things_get.yml": `operationId: things_get
description: long prose
responses:
  "200":
    $ref: "responses/thing.yml"
  4xx:
    description: client error
`,
		"spec/res/responses/thing.yml": `description: one thing
content:
  application/json:
    schema:
      properties:
        thing:
          $ref: "../models/thing.yml"
    examples:
      One: {value: {}}
`,
		"spec/res/models/thing.yml": `type: object
required: [status, example]
properties:
  status:
    type: string
    enum: [new, active, off]
    example: off
  example:
    type: string
  window:
    allOf:
      - $ref: "window.yml"
      - description: the window, if any
  parent:
    $ref: "thing.yml"
`,
		"spec/res/models/window.yml": `type: object
nullable: true
properties: {start: {type: string}}
`,
	})
	src := &source{repo: dir, commit: commit, files: map[string]any{}}
	doc, err := src.bundle("spec/root.yaml", []string{"GET /v2/things/{id}"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	s := string(b)
	for _, bad := range []string{`"$ref"`, `"examples"`, `"/v2/other"`, "long prose", `"discriminator"`} {
		if strings.Contains(s, bad) {
			t.Errorf("bundle still has %s: %s", bad, s)
		}
	}
	var got struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Description string
				Content     map[string]struct {
					Schema struct {
						Properties map[string]struct {
							Required   []string
							Properties map[string]json.RawMessage
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	op := got.Paths["/v2/things/{id}"]["get"]
	if _, ok := op.Responses["4XX"]; !ok {
		t.Errorf("4xx not respelled 4XX: %v", op.Responses)
	}
	r200 := op.Responses["200"]
	if r200.Description != "one thing" {
		t.Errorf("a response keeps its description, got %q", r200.Description)
	}
	thing := r200.Content["application/json"].Schema.Properties["thing"]
	// YAML 1.2: "off" stays a string; a property named "example" stays.
	if st := string(thing.Properties["status"]); !strings.Contains(st, `"off"`) || strings.Contains(st, "false") {
		t.Errorf("status enum %s", st)
	}
	if _, ok := thing.Properties["example"]; !ok {
		t.Errorf("the property called example was dropped: %v", thing.Properties)
	}
	// The description-only allOf member is gone: the nullable window
	// stands alone.
	if w := string(thing.Properties["window"]); !strings.Contains(w, `"nullable":true`) || strings.Contains(w, "allOf") {
		t.Errorf("window %s", w)
	}
	// The self-reference is cut with an empty schema.
	if p := string(thing.Properties["parent"]); p != "{}" {
		t.Errorf("parent %s, want the cycle cut as {}", p)
	}
	if _, err := src.bundle("spec/root.yaml", []string{"GET /v2/missing"}); err == nil {
		t.Error("an operation the spec lacks was bundled")
	}
}
