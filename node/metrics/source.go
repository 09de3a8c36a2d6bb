package metrics

import (
	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the metrics read at scrape time: node.Agent implements it
// (a test implements it with fixed values). Every method must be safe to
// call concurrently and before the agent runs.
type Source interface {
	// RaftStats returns raft's own statistics (raftfsm.Store.Stats): the keys
	// state, term, last_log_index, commit_index, applied_index, fsm_pending,
	// last_snapshot_index, num_peers and last_contact are read. nil while
	// raft is not running: the raft figures are then left out.
	RaftStats() map[string]string
	// Members returns the gossip members as this node sees them
	// (mesh.Mesh.Members). nil while the mesh is not running: the gossip
	// figures, health score included, are then left out.
	Members() []mesh.Member
	// GossipHealthScore is memberlist's awareness score
	// (mesh.Mesh.HealthScore): 0 is healthy, higher means this node misses
	// acks and has slowed its own probing.
	GossipHealthScore() int
	// View calls fn with the local replica of the state under a read lock.
	View(fn func(s *raftfsm.State))
}
