package deployplan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Place decides which node runs each slot of a service. It is pure, so the
// leader's choice travels in the DeployService command and every replica
// applies the same placement.
//
//   - `nodes:` in the spec is honoured exactly (every listed node must be active);
//   - a slot already placed on an active node stays there (stateful services
//     never move: their volume lives on that node);
//   - a new slot goes where it spreads the service best: fewest replicas of the
//     service in the node's region, then on the node, then fewest instances of
//     any service on the node, then node id.
func Place(s *raftfsm.State, key string, spec raftfsm.ServiceSpec) ([]raftfsm.Assignment, error) {
	var active []*raftfsm.Node
	for _, id := range raftfsm.SortedKeys(s.Nodes) {
		if n := s.Nodes[id]; n.Status == raftfsm.NodeActive {
			active = append(active, n)
		}
	}
	if len(spec.Nodes) > 0 {
		out := make([]raftfsm.Assignment, 0, len(spec.Nodes))
		for slot, id := range spec.Nodes {
			n, ok := s.Nodes[id]
			if !ok {
				return nil, fmt.Errorf("%w: nodes: %s is not in the cluster", raftfsm.ErrInvalid, id)
			}
			if n.Status != raftfsm.NodeActive {
				return nil, fmt.Errorf("%w: nodes: %s is %s", raftfsm.ErrConflict, id, n.Status)
			}
			out = append(out, raftfsm.Assignment{Slot: slot, Node: id})
		}
		return out, nil
	}
	if len(active) == 0 {
		return nil, fmt.Errorf("%w: no active node to place %s on", raftfsm.ErrConflict, key)
	}

	total := map[string]int{}
	for _, in := range s.Instances {
		if in.Service != key {
			total[in.Node]++
		}
	}
	onNode, inRegion := map[string]int{}, map[string]int{}
	region := map[string]string{}
	for _, n := range active {
		region[n.ID] = n.Region
	}
	out := make([]raftfsm.Assignment, spec.Replicas)
	placed := make([]bool, spec.Replicas)
	for _, in := range s.ServiceInstances(key) {
		if in.Slot >= spec.Replicas {
			continue
		}
		n, ok := s.Nodes[in.Node]
		if !ok || (n.Status != raftfsm.NodeActive && spec.Kind != raftfsm.KindStateful) {
			continue
		}
		if n.Status != raftfsm.NodeActive {
			return nil, fmt.Errorf("%w: stateful %s lives on %s, which is %s", raftfsm.ErrConflict, key, n.ID, n.Status)
		}
		out[in.Slot] = raftfsm.Assignment{Slot: in.Slot, Node: in.Node}
		placed[in.Slot] = true
		onNode[in.Node]++
		inRegion[n.Region]++
	}
	for slot := range out {
		if placed[slot] {
			continue
		}
		best := slices.MinFunc(active, func(a, b *raftfsm.Node) int {
			for _, d := range []int{
				inRegion[a.Region] - inRegion[b.Region],
				onNode[a.ID] - onNode[b.ID],
				total[a.ID] - total[b.ID],
			} {
				if d != 0 {
					return d
				}
			}
			return strings.Compare(a.ID, b.ID)
		})
		out[slot] = raftfsm.Assignment{Slot: slot, Node: best.ID}
		onNode[best.ID]++
		inRegion[best.Region]++
	}
	return out, nil
}
