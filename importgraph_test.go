package main

// The import-graph test: the dependency rules of DESIGN.md ("Dependency
// direction") and issue 17, checked on what `go list` reports, so an arrow
// that breaks them fails CI instead of waiting for a review.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/dropmesh/dropmesh"

// knownViolations are arrows that break a rule today and are being fixed
// on another branch: "rule: from -> to" -> why. A listed arrow is logged,
// not failed; an entry that no longer matches anything fails, so the list
// only shrinks. The lead empties it once the split of the agent is merged.
var knownViolations = map[string]string{}

// thirdPartyTesting are packages outside the module that the binary links
// although they import `testing`: hashicorp/raft keeps its test cluster
// helpers (testing.go) in the package itself. Nothing of ours may.
var thirdPartyTesting = []string{"github.com/hashicorp/raft"}

// goPackage is the part of `go list -json` the rules read.
type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// listPackages runs `go list -deps -json` on patterns, from the module root.
func listPackages(t *testing.T, patterns ...string) map[string]*goPackage {
	t.Helper()
	args := append([]string{"list", "-e", "-deps", "-json=ImportPath,Imports,Deps,Module"}, patterns...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	pkgs := map[string]*goPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs
}

// ours is the module-relative path of a package of this module ("." for
// the root, "node/api"), ok false for any other package.
func ours(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// under reports whether rel is dir or inside it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// importRule says what a set of packages of this module may not reach.
type importRule struct {
	name string
	// from selects the packages the rule is about (module-relative path).
	from func(rel string) bool
	// deps: the rule reads every package `from` depends on, directly or not
	// (else only its direct imports).
	deps bool
	// forbidden reports whether `from` may not reach path (a full import
	// path; rel is set when it is ours).
	forbidden func(path, rel string, ours bool) bool
	// requires, when set, is a package that must exist for the rule to
	// apply (e.g. node/converge, which exists once the split is merged).
	requires string
}

var importRules = []importRule{
	{
		name: "nothing imports node but main and bench",
		from: func(rel string) bool { return rel != "." && !under(rel, "bench") },
		forbidden: func(_, rel string, ok bool) bool {
			return ok && rel == "node"
		},
	},
	{
		name: "raftfsm, mesh and cloudops import nothing of node or ui",
		from: func(rel string) bool { return under(rel, "raftfsm") || under(rel, "mesh") || under(rel, "cloudops") },
		deps: true,
		forbidden: func(_, rel string, ok bool) bool {
			return ok && (under(rel, "node") || under(rel, "ui"))
		},
	},
	{
		name: "node/apiclient and node/cli do not depend on gin or the API handler",
		from: func(rel string) bool { return under(rel, "node/apiclient") || under(rel, "node/cli") },
		deps: true,
		forbidden: func(path, rel string, ok bool) bool {
			return under(path, "github.com/gin-gonic/gin") || (ok && rel == "node/api")
		},
	},
	{
		name: "node/metrics does not build the API",
		from: func(rel string) bool { return under(rel, "node/metrics") },
		deps: true,
		forbidden: func(path, rel string, ok bool) bool {
			return under(path, "github.com/gin-gonic/gin") || (ok && under(rel, "node/api"))
		},
	},
	{
		name: "ui reaches the agent only through its interface (node/control) and reads raftfsm",
		from: func(rel string) bool { return under(rel, "ui") },
		forbidden: func(_, rel string, ok bool) bool {
			return ok && (under(rel, "node") && rel != "node/control")
		},
	},
	{
		name: "test kits stay out of non-test code",
		from: func(rel string) bool { return !under(rel, "bench") && !isTestKit(rel) },
		forbidden: func(_, rel string, ok bool) bool {
			return ok && isTestKit(rel)
		},
	},
	{
		name:     "node/converge cannot commit (it reports to the leader)",
		requires: "node/converge",
		from:     func(rel string) bool { return under(rel, "node/converge") },
		deps:     true,
		forbidden: func(_, rel string, ok bool) bool {
			return ok && (under(rel, "node/leader") || under(rel, "node/controller") || under(rel, "node/api") || rel == "node")
		},
	},
	{
		// The API's controller commits through its narrow Node interface:
		// it reaches neither the agent nor a leader duty nor convergence.
		name:     "node/controller reaches neither node, node/leader nor node/converge",
		requires: "node/controller",
		from:     func(rel string) bool { return under(rel, "node/controller") },
		deps:     true,
		forbidden: func(_, rel string, ok bool) bool {
			return ok && (rel == "node" || under(rel, "node/leader") || under(rel, "node/converge") || under(rel, "node/api"))
		},
	},
	{
		// converge reads raftfsm's types (which link the raft store), but
		// never speaks raft itself: what it observes goes to the leader as
		// a report.
		name:     "node/converge does not speak raft",
		requires: "node/converge",
		from:     func(rel string) bool { return under(rel, "node/converge") },
		forbidden: func(path, _ string, _ bool) bool {
			return path == "github.com/hashicorp/raft"
		},
	},
}

// isTestKit reports whether a package of ours is a test-only kit: named
// "...test" below the root (apitest, runtimetest, fakeapitest,
// contracttest), or node/testkit.
func isTestKit(rel string) bool {
	return rel == "node/testkit" || (strings.Contains(rel, "/") && strings.HasSuffix(rel, "test"))
}

// checkRules returns every broken arrow as "rule: from -> to".
func checkRules(pkgs map[string]*goPackage, rules []importRule) []string {
	exists := map[string]bool{}
	for path := range pkgs {
		if rel, ok := ours(path); ok {
			exists[rel] = true
		}
	}
	var broken []string
	for _, r := range rules {
		if r.requires != "" && !exists[r.requires] {
			continue
		}
		for path, p := range pkgs {
			rel, ok := ours(path)
			if !ok || !r.from(rel) {
				continue
			}
			reach := p.Imports
			if r.deps {
				reach = p.Deps
			}
			for _, to := range reach {
				toRel, toOurs := ours(to)
				if toOurs && toRel == rel {
					continue
				}
				if r.forbidden(to, toRel, toOurs) {
					name := to
					if toOurs {
						name = toRel
					}
					broken = append(broken, fmt.Sprintf("%s: %s -> %s", r.name, rel, name))
				}
			}
		}
	}
	slices.Sort(broken)
	return slices.Compact(broken)
}

func TestImportGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the whole module")
	}
	pkgs := listPackages(t, "./...")
	used := map[string]bool{}
	for _, b := range checkRules(pkgs, importRules) {
		if why, ok := knownViolations[b]; ok {
			used[b] = true
			t.Logf("known, %s: %s", why, b)
			continue
		}
		t.Errorf("%s", b)
	}
	for k := range knownViolations {
		if !used[k] {
			t.Errorf("knownViolations lists %q, which no longer happens: remove it", k)
		}
	}
}

// The agent's binary links no package of ours that imports `testing`, and
// no other one but those listed in thirdPartyTesting.
func TestBinaryLinksNoTestKit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the binary")
	}
	pkgs := listPackages(t, ".")
	for path, p := range pkgs {
		if !slices.Contains(p.Imports, "testing") || slices.Contains(thirdPartyTesting, path) {
			continue
		}
		t.Errorf("the binary links %s, which imports testing: move what needs it to a test-only package", path)
	}
	for _, path := range thirdPartyTesting {
		if p, ok := pkgs[path]; !ok || !slices.Contains(p.Imports, "testing") {
			t.Errorf("thirdPartyTesting lists %s, which the binary no longer links with testing: remove it", path)
		}
	}
}

// The binary links only the Cloudflare API packages it calls: the
// library's root package imports all of its ~100 API packages, most of a
// cold build (README's first command has a time budget).
func TestBinaryLinksOnlyTheCloudflarePackagesItCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the binary")
	}
	const root = "github.com/cloudflare/cloudflare-go/v6"
	pkgs := listPackages(t, ".")
	if _, ok := pkgs[root]; ok {
		for path, p := range pkgs {
			if slices.Contains(p.Imports, root) {
				t.Errorf("%s imports %s: import its dns, zones and option packages instead", path, root)
			}
		}
	}
}

// The rules catch what they are about: each made-up arrow below breaks
// exactly one rule, and a clean graph breaks none.
func TestImportRulesCatchBadArrows(t *testing.T) {
	// pkg is a made-up package of ours; imports are module-relative unless
	// they name another module.
	pkg := func(rel string, imports ...string) *goPackage {
		p := &goPackage{ImportPath: module + "/" + rel}
		for _, i := range imports {
			if strings.HasPrefix(i, "github.com/") { // another module
				p.Imports = append(p.Imports, i)
			} else {
				p.Imports = append(p.Imports, module+"/"+i)
			}
		}
		p.Deps = p.Imports
		return p
	}
	clean := map[string]*goPackage{
		module:                   {ImportPath: module, Imports: []string{module + "/node"}},
		module + "/node":         pkg("node", "node/api", "raftfsm"),
		module + "/node/api":     pkg("node/api", "node/control", "github.com/gin-gonic/gin"),
		module + "/ui":           pkg("ui", "node/control", "raftfsm"),
		module + "/raftfsm":      pkg("raftfsm", "github.com/hashicorp/raft"),
		module + "/node/cli":     pkg("node/cli", "node/apiclient"),
		module + "/node/metrics": pkg("node/metrics", "raftfsm"),
	}
	if b := checkRules(clean, importRules); len(b) != 0 {
		t.Fatalf("a clean graph breaks rules: %v", b)
	}
	for _, c := range []struct {
		add  *goPackage
		rule string
	}{
		{pkg("node/leader", "node"), "nothing imports node"},
		{pkg("mesh", "node/control"), "raftfsm, mesh and cloudops"},
		{pkg("node/apiclient", "github.com/gin-gonic/gin"), "node/apiclient and node/cli"},
		{pkg("node/metrics", "node/api"), "node/metrics does not build the API"},
		{pkg("ui", "node/notify"), "ui reaches the agent"},
		{pkg("node/edge", "node/api/apitest"), "test kits"},
		{pkg("node/converge", "node/controller"), "node/converge cannot commit"},
		{pkg("node/converge", "github.com/hashicorp/raft"), "node/converge does not speak raft"},
		{pkg("node/controller", "node/leader/healer"), "node/controller reaches neither"},
		{pkg("node/controller", "node/converge"), "node/controller reaches neither"},
	} {
		g := map[string]*goPackage{}
		for k, v := range clean {
			g[k] = v
		}
		g[c.add.ImportPath] = c.add
		b := checkRules(g, importRules)
		if len(b) != 1 || !strings.HasPrefix(b[0], c.rule) {
			t.Errorf("%s importing %v: broke %v, want one rule starting %q", c.add.ImportPath, c.add.Imports, b, c.rule)
		}
	}
}
