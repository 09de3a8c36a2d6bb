package imagepeer_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func refOf(spec raftfsm.ServiceSpec) string { return "dropmesh-build/" + spec.Build + ":x" }

func buildState() *raftfsm.State {
	s := raftfsm.NewState()
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		s.Nodes[n] = &raftfsm.Node{ID: n, Status: raftfsm.NodeActive}
	}
	spec := raftfsm.ServiceSpec{Build: "ctx1"}
	s.Services["w/p/e/web"] = &raftfsm.Service{Key: "w/p/e/web", Spec: spec, Generation: 1, Revisions: []raftfsm.Revision{{Generation: 1, Spec: spec}}}
	s.Services["w/p/e/db"] = &raftfsm.Service{Key: "w/p/e/db", Spec: raftfsm.ServiceSpec{Image: "redis:7"}, Generation: 1,
		Revisions: []raftfsm.Revision{{Generation: 1, Spec: raftfsm.ServiceSpec{Image: "redis:7"}}}}
	s.Instances["web#0"] = &raftfsm.Instance{ID: "web#0", Service: "w/p/e/web", Node: "node-1", DesiredGeneration: 1}
	s.Instances["web#1"] = &raftfsm.Instance{ID: "web#1", Service: "w/p/e/web", Node: "node-2", DesiredGeneration: 1}
	s.Instances["db#0"] = &raftfsm.Instance{ID: "db#0", Service: "w/p/e/db", Node: "node-1", DesiredGeneration: 1}
	return s
}

// The builder is a node that runs the build, the least loaded; it stays
// while active, is replaced when dead, and nothing is assigned once built.
func TestAssignments(t *testing.T) {
	s := buildState()
	got := imagepeer.Assignments(s, refOf)
	want := []raftfsm.PutImage{{Ref: "dropmesh-build/ctx1:x", Builder: "node-2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assignments %+v, want %+v (node-2 runs fewer instances)", got, want)
	}
	s.Images["dropmesh-build/ctx1:x"] = &raftfsm.Image{Ref: "dropmesh-build/ctx1:x", Builder: "node-2"}
	if got := imagepeer.Assignments(s, refOf); len(got) != 0 {
		t.Fatalf("an active builder was replaced: %+v", got)
	}
	// Its instance moved away: another runner builds.
	s.Instances["web#1"].Node = "node-3"
	if got := imagepeer.Assignments(s, refOf); len(got) != 1 || got[0].Builder != "node-3" {
		t.Fatalf("builder no longer runs it: %+v, want node-3", got)
	}
	s.Instances["web#1"].Node = "node-2"
	s.Nodes["node-2"].Status = raftfsm.NodeDead
	if got := imagepeer.Assignments(s, refOf); len(got) != 1 || got[0].Builder != "node-1" {
		t.Fatalf("dead builder: %+v, want node-1", got)
	}
	s.Images["dropmesh-build/ctx1:x"].ID = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	if got := imagepeer.Assignments(s, refOf); len(got) != 0 {
		t.Fatalf("assigned after the build: %+v", got)
	}
}

func TestAllowedAndStaleBuilds(t *testing.T) {
	s := buildState()
	canon := func(r string) string {
		if r == "redis:7" || r == "docker.io/library/redis:7" {
			return "docker.io/library/redis:7"
		}
		return r
	}
	for ref, want := range map[string]bool{
		"dropmesh-build/ctx1:x":     true,
		"docker.io/library/redis:7": true,
		"redis:7":                   true,
		"redis:8":                   false,
		"secret/app:1":              false,
		"sha256:0000000000000000000000000000000000000000000000000000000000000000": false,
	} {
		if got := imagepeer.Allowed(s, ref, canon, refOf); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", ref, got, want)
		}
	}
	now := time.Unix(2e9, 0)
	built := map[string]time.Time{
		"dropmesh-build/ctx1:x":   now.Add(-48 * time.Hour), // referenced
		"dropmesh-build/old:x":    now.Add(-48 * time.Hour), // stale
		"dropmesh-build/recent:x": now.Add(-time.Hour),      // within the grace
	}
	if got := imagepeer.StaleBuilds(s, built, refOf, now, 24*time.Hour); !reflect.DeepEqual(got, []string{"dropmesh-build/old:x"}) {
		t.Fatalf("stale %v", got)
	}
}
