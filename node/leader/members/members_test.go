package members

import (
	"context"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/leader/leadertest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func member(id, api string, st mesh.Status) mesh.Member {
	return mesh.Member{ID: id, Status: st, Meta: mesh.NodeMeta{ID: id, API: api, Raft: "10.0.0.1:7947", Region: "nyc3", Version: "test"}}
}

// Alive members are recorded once, again when their addresses change, and
// members that are not alive are not recorded.
func TestRegisterRecordsAliveMembersOnce(t *testing.T) {
	st := leadertest.New()
	ctx := context.Background()
	ms := []mesh.Member{member("node-1", "10.0.0.1:9999", mesh.StatusAlive), member("node-2", "10.0.0.2:9999", mesh.StatusSuspect)}
	for range 2 {
		if err := Register(ctx, st, ms, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(st.Applied()); n != 1 {
		t.Fatalf("%d commands for one new member, want 1", n)
	}
	ms[0].Meta.API = "10.0.0.9:9999"
	if err := Register(ctx, st, ms, t0); err != nil {
		t.Fatal(err)
	}
	st.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes["node-1"]; !ok || n.API != "10.0.0.9:9999" {
			t.Fatalf("node-1 %+v", n)
		}
		if _, ok := s.Nodes["node-2"]; ok {
			t.Fatal("a suspect member was recorded")
		}
	})
}
