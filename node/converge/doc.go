// Package converge is what every node does to make its own side match the
// replicated state: its Docker engine, its edge, its gossip keys, its
// health reports. It moves out of node piece by piece (issue 17); so far
// the gossip keyring (GossipKeys), the environment injected from a
// service's dependencies (InjectEnv) and the edge's routes (EdgeRoutes).
// The reconciler, the instances, images, cron, the edge's application and
// the health loop are still node's.
//
// Converge code reads the state (State has View and Changed) and reports
// what it sees; it has no way to commit a command: the interfaces it is
// built from have no Apply, so "a follower applies a command" does not
// compile here.
package converge

import "github.com/dropmesh/dropmesh/raftfsm"

// State is this node's replica of the state: read it, wait for a change.
type State interface {
	View(fn func(*raftfsm.State))
	Changed() <-chan struct{}
}
