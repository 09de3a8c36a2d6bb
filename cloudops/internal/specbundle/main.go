// Command specbundle extracts, from DigitalOcean's and Cloudflare's published
// OpenAPI documents, the operations dropmesh and its fake cloud use, and
// writes each as one self-contained JSON document (every $ref inlined) into
// cloudops/testdata/openapi, where the contract test reads them.
//
// It reads the documents straight out of git repositories at a named commit
// (git show COMMIT:PATH), so a bundle can be rebuilt byte for byte:
//
//	go run ./cloudops/internal/specbundle \
//	    -do-repo PATH/digitalocean-openapi -do-commit 7c1300c4 \
//	    -cf-repo PATH/cloudflare-api-schemas -cf-commit 8c9b6cfb \
//	    -out cloudops/testdata/openapi
//
// Bundling does only what a validator needs: it inlines every $ref
// (DigitalOcean's spec is split over hundreds of files and puts $ref where
// OpenAPI allows none, on operations and inside properties, so kin-openapi
// cannot load it as published), drops examples, code samples, descriptions (but a response's) and
// discriminators (their mappings are $refs by another name), keeps the
// selected paths and methods and nothing else, drops allOf members that
// constrain nothing, and spells response ranges
// the way OpenAPI does ("4XX", where Cloudflare sometimes writes "4xx"). A
// reference cycle is cut with an empty schema (which accepts anything) and
// reported on stderr. Schemas are otherwise copied as they are.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// digitalOceanOps are the DigitalOcean operations the fake serves (and so
// that dropmesh, godo and doctl call), as "METHOD /path" in the spec's
// spelling.
var digitalOceanOps = []string{
	"GET /v2/account",
	"GET /v2/account/keys", "POST /v2/account/keys",
	"GET /v2/account/keys/{ssh_key_identifier}", "DELETE /v2/account/keys/{ssh_key_identifier}",
	"GET /v2/actions", "GET /v2/actions/{action_id}",
	"GET /v2/droplets", "POST /v2/droplets", "DELETE /v2/droplets",
	"GET /v2/droplets/{droplet_id}", "DELETE /v2/droplets/{droplet_id}",
	"GET /v2/droplets/{droplet_id}/actions", "POST /v2/droplets/{droplet_id}/actions",
	"GET /v2/droplets/{droplet_id}/actions/{action_id}",
	"GET /v2/firewalls", "POST /v2/firewalls",
	"GET /v2/firewalls/{firewall_id}", "PUT /v2/firewalls/{firewall_id}", "DELETE /v2/firewalls/{firewall_id}",
	"GET /v2/images", "GET /v2/images/{image_id}", "DELETE /v2/images/{image_id}",
	"POST /v2/images/{image_id}/actions", "GET /v2/images/{image_id}/actions/{action_id}",
	"GET /v2/regions", "GET /v2/sizes",
	"GET /v2/snapshots", "GET /v2/snapshots/{snapshot_id}", "DELETE /v2/snapshots/{snapshot_id}",
	"GET /v2/tags", "GET /v2/tags/{tag_id}",
	"GET /v2/vpcs", "POST /v2/vpcs", "GET /v2/vpcs/{vpc_id}", "DELETE /v2/vpcs/{vpc_id}",
}

// cloudflareOps are the Cloudflare operations the fake serves.
var cloudflareOps = []string{
	"GET /zones", "GET /zones/{zone_id}",
	"GET /zones/{zone_id}/dns_records", "POST /zones/{zone_id}/dns_records",
	"GET /zones/{zone_id}/dns_records/{dns_record_id}", "PUT /zones/{zone_id}/dns_records/{dns_record_id}",
	"PATCH /zones/{zone_id}/dns_records/{dns_record_id}", "DELETE /zones/{zone_id}/dns_records/{dns_record_id}",
}

func main() {
	doRepo := flag.String("do-repo", "", "git repository of digitalocean/openapi")
	doCommit := flag.String("do-commit", "", "commit of digitalocean/openapi to read")
	cfRepo := flag.String("cf-repo", "", "git repository of cloudflare/api-schemas")
	cfCommit := flag.String("cf-commit", "", "commit of cloudflare/api-schemas to read (one that holds openapi.json)")
	out := flag.String("out", "cloudops/testdata/openapi", "directory to write digitalocean.json and cloudflare.json into")
	flag.Parse()
	if *doRepo == "" || *doCommit == "" || *cfRepo == "" || *cfCommit == "" {
		fmt.Fprintln(os.Stderr, "specbundle: -do-repo, -do-commit, -cf-repo and -cf-commit are required")
		os.Exit(2)
	}
	jobs := []struct {
		name, repo, commit, root string
		ops                      []string
	}{
		{"digitalocean", *doRepo, *doCommit, "specification/DigitalOcean-public.v2.yaml", digitalOceanOps},
		{"cloudflare", *cfRepo, *cfCommit, "openapi.json", cloudflareOps},
	}
	for _, j := range jobs {
		src := &source{repo: j.repo, files: map[string]any{}}
		var err error
		if src.commit, err = src.fullCommit(j.commit); err != nil {
			fail(err)
		}
		doc, err := src.bundle(j.root, j.ops)
		if err != nil {
			fail(fmt.Errorf("%s: %w", j.name, err))
		}
		b, err := json.MarshalIndent(doc, "", " ")
		if err != nil {
			fail(err)
		}
		dst := filepath.Join(*out, j.name+".json")
		if err := os.WriteFile(dst, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "specbundle: wrote %s (%d operations, %d bytes) from %s@%s\n", dst, len(j.ops), len(b)+1, j.root, src.commit)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "specbundle:", err)
	os.Exit(1)
}

// source reads the files of one repository at one commit.
type source struct {
	repo, commit string
	files        map[string]any
}

func (s *source) fullCommit(c string) (string, error) {
	b, err := exec.Command("git", "-C", s.repo, "rev-parse", "--verify", c+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("resolve commit %s in %s: %w", c, s.repo, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// load returns the parsed file at p (a path inside the repository).
func (s *source) load(p string) (any, error) {
	if v, ok := s.files[p]; ok {
		return v, nil
	}
	raw, err := exec.Command("git", "-C", s.repo, "show", s.commit+":"+p).Output()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, s.commit, err)
	}
	if !strings.HasSuffix(p, ".json") {
		// YAML 1.2, as OpenAPI 3 asks: an unquoted "off" in an enum is a
		// string, not YAML 1.1's false.
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		if raw, err = json.Marshal(stringKeys(v)); err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	s.files[p] = v
	return v, nil
}

// stringKeys turns YAML mappings with non-string keys (an unquoted 200)
// into JSON objects.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = stringKeys(e)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		for i, e := range t {
			t[i] = stringKeys(e)
		}
	}
	return v
}

// bundle builds the document of the selected operations out of root.
func (s *source) bundle(root string, ops []string) (map[string]any, error) {
	v, err := s.load(root)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", root)
	}
	paths, _ := doc["paths"].(map[string]any)
	outPaths := map[string]any{}
	for _, op := range ops {
		method, p, _ := strings.Cut(op, " ")
		method = strings.ToLower(method)
		item, _ := paths[p].(map[string]any)
		if item == nil || item[method] == nil {
			return nil, fmt.Errorf("%s has no operation %s", root, op)
		}
		dst, _ := outPaths[p].(map[string]any)
		if dst == nil {
			dst = map[string]any{}
			if params, ok := item["parameters"]; ok {
				r, err := s.resolve(params, root, nil, "")
				if err != nil {
					return nil, fmt.Errorf("%s parameters: %w", p, err)
				}
				dst["parameters"] = r
			}
			outPaths[p] = dst
		}
		r, err := s.resolve(item[method], root, nil, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		dst[method] = r
	}
	info, _ := doc["info"].(map[string]any)
	out := map[string]any{
		"openapi": doc["openapi"],
		"info": map[string]any{
			"title":   info["title"],
			"version": info["version"],
			"description": fmt.Sprintf("The operations dropmesh uses, bundled by cloudops/internal/specbundle from %s at commit %s of %s. "+
				"Every $ref is inlined and examples are dropped; see cloudops/testdata/openapi/README.md.", root, s.commit, s.repo),
		},
		"servers": doc["servers"],
		"paths":   outPaths,
	}
	if comps, ok := doc["components"].(map[string]any); ok {
		if ss, ok := comps["securitySchemes"]; ok {
			r, err := s.resolve(ss, root, nil, "")
			if err != nil {
				return nil, err
			}
			out["components"] = map[string]any{"securitySchemes": r}
		}
	}
	return out, nil
}

// dropped are keys that carry no constraint, left out of the bundle (and so
// are descriptions other than a response's).
// A discriminator goes too: its mapping names schemas by $ref, which an
// inlined document no longer has; the oneOf it sat on still validates.
var dropped = []string{"example", "examples", "x-codeSamples", "discriminator"}

// resolve returns v with every $ref inlined. file is the repository path v
// was read from (relative refs start there), stack the refs being inlined
// (to cut cycles), parent the key v sits under.
func (s *source) resolve(v any, file string, stack []string, parent string) (any, error) {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := s.resolve(e, file, stack, "")
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok {
			return s.follow(ref, file, stack, parent)
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			// Under "properties" and the like the keys are names, not
			// keywords: a property called "example" stays.
			if parent != "properties" && parent != "paths" && slices.Contains(dropped, k) {
				continue
			}
			// Descriptions are prose; only a response's is required.
			if _, prose := e.(string); prose && k == "description" && parent != "properties" && !isStatus(parent) {
				continue
			}
			if parent == "responses" && len(k) == 3 && strings.HasSuffix(k, "xx") {
				k = k[:1] + "XX"
			}
			r, err := s.resolve(e, file, stack, k)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return simplifyAllOf(out), nil
	}
	return v, nil
}

// simplifyAllOf drops the members of an allOf that constrain nothing (left
// empty once their description is gone): DigitalOcean writes
// "allOf: [$ref: nullable-object, description: ...]", and a validator
// that reads OpenAPI 3.0 strictly lets the description-only member refuse
// null. An allOf left with one member is that member.
func simplifyAllOf(m map[string]any) any {
	all, ok := m["allOf"].([]any)
	if !ok {
		return m
	}
	kept := slices.DeleteFunc(slices.Clone(all), func(e any) bool {
		sub, ok := e.(map[string]any)
		return ok && len(sub) == 0
	})
	if len(kept) == 1 && len(m) == 1 {
		return kept[0]
	}
	m["allOf"] = kept
	return m
}

// isStatus reports whether k is a key of a responses object.
func isStatus(k string) bool { return k == "default" || (len(k) == 3 && k[0] >= '1' && k[0] <= '5') }

// follow inlines the target of ref, read relative to file, in v's place
// under parent.
func (s *source) follow(ref, file string, stack []string, parent string) (any, error) {
	target, pointer, _ := strings.Cut(ref, "#")
	tfile := file
	if target != "" {
		tfile = path.Clean(path.Join(path.Dir(file), target))
	}
	key := tfile + "#" + pointer
	if slices.Contains(stack, key) {
		fmt.Fprintf(os.Stderr, "specbundle: reference cycle at %s, cut with an empty schema\n", key)
		return map[string]any{}, nil
	}
	doc, err := s.load(tfile)
	if err != nil {
		return nil, err
	}
	node, err := walk(doc, pointer)
	if err != nil {
		return nil, fmt.Errorf("$ref %q in %s: %w", ref, file, err)
	}
	return s.resolve(node, tfile, append(slices.Clone(stack), key), parent)
}

// walk follows a JSON pointer ("/a/b~1c") into v.
func walk(v any, pointer string) (any, error) {
	if pointer == "" || pointer == "/" {
		return v, nil
	}
	for _, part := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("pointer " + pointer + " leaves the objects")
		}
		if v, ok = m[part]; !ok {
			return nil, errors.New("pointer " + pointer + ": no " + part)
		}
	}
	return v, nil
}
