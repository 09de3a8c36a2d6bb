package node

import (
	"fmt"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// placementState is a state with one active node per region given
// (node-1, node-2, ...): what the DNS and roll-out tests place services on.
// (It stayed here when placement moved to node/deployplan.)
func placementState(regions ...string) *raftfsm.State {
	s := raftfsm.NewState()
	for i, r := range regions {
		id := fmt.Sprintf("node-%d", i+1)
		s.Nodes[id] = &raftfsm.Node{ID: id, Region: r, Status: raftfsm.NodeActive}
	}
	return s
}
