package node

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestProtoConflict: the leader emits a command type only when every raft
// server, voter or not, is known to understand it; a server it cannot see
// (dead, left, unknown to the mesh, no protocol advertised) counts as
// knowing only the first release's types.
func TestProtoConflict(t *testing.T) {
	newType := protoFloor + 1 // a type added after the first release
	oldType := protoFloor
	member := func(status mesh.Status, proto int) mesh.Member {
		return mesh.Member{Status: status, Meta: mesh.NodeMeta{Proto: proto, Version: "v"}}
	}
	current := int(newType)
	for _, tc := range []struct {
		name    string
		t       raftfsm.CommandType
		servers map[string]bool // id -> voter
		members map[string]mesh.Member
		refused string // the server named in the error, "" when accepted
	}{
		{"all voters alive and current", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusAlive, current)}, ""},
		{"suspect voter counts with its protocol", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusSuspect, current)}, ""},
		{"alive voter on an older release", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusAlive, int(oldType))}, "b"},
		{"non-voter on an older release", newType, map[string]bool{"a": true, "c": false},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "c": member(mesh.StatusAlive, int(oldType))}, "c"},
		{"dead voter, new type", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusDead, current)}, "b"},
		{"left voter, new type", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusLeft, current)}, "b"},
		{"voter unknown to the mesh, new type", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current)}, "b"},
		{"voter without a protocol, new type", newType, map[string]bool{"a": true, "b": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusAlive, 0)}, "b"},
		{"dead and unknown voters, first-release type", oldType, map[string]bool{"a": true, "b": true, "c": true},
			map[string]mesh.Member{"a": member(mesh.StatusAlive, current), "b": member(mesh.StatusDead, current)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var servers []raftfsm.Server
			for id, voter := range tc.servers {
				servers = append(servers, raftfsm.Server{ID: id, Address: id + ":7947", Voter: voter})
			}
			lookup := func(id string) (mesh.Member, bool) {
				m, ok := tc.members[id]
				m.ID = id
				return m, ok
			}
			err := protoConflict(tc.t, servers, lookup)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && !errors.Is(err, raftfsm.ErrConflict):
				t.Fatalf("err = %v, want ErrConflict naming %s", err, tc.refused)
			case tc.refused != "" && !slices.Contains(strings.Fields(err.Error()), tc.refused):
				t.Fatalf("err = %v, want it to name %s", err, tc.refused)
			}
		})
	}
}
