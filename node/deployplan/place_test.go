package deployplan

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func placementState(regions ...string) *raftfsm.State {
	s := raftfsm.NewState()
	for i, r := range regions {
		id := fmt.Sprintf("node-%d", i+1)
		s.Nodes[id] = &raftfsm.Node{ID: id, Region: r, Status: raftfsm.NodeActive}
	}
	return s
}

func nodesOf(a []raftfsm.Assignment) []string {
	var out []string
	for _, x := range a {
		out = append(out, x.Node)
	}
	return out
}

func TestPlaceSpreadsAcrossRegionsThenNodes(t *testing.T) {
	s := placementState("nyc3", "nyc3", "fra1")
	got, err := Place(s, "k", raftfsm.ServiceSpec{Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := nodesOf(got); n[0] != "node-1" || n[1] != "node-3" {
		t.Fatalf("placed on %v, want one per region", n)
	}
	got, _ = Place(s, "k", raftfsm.ServiceSpec{Replicas: 4})
	count := map[string]int{}
	for _, n := range nodesOf(got) {
		count[n]++
	}
	if count["node-1"] != 1 || count["node-2"] != 1 || count["node-3"] != 2 {
		t.Fatalf("4 replicas: %v", count)
	}
}

func TestPlaceKeepsExistingSlotsAndHonoursNodes(t *testing.T) {
	s := placementState("nyc3", "nyc3", "nyc3")
	s.Instances["k#0"] = &raftfsm.Instance{ID: "k#0", Service: "k", Slot: 0, Node: "node-3"}
	got, _ := Place(s, "k", raftfsm.ServiceSpec{Replicas: 2})
	if n := nodesOf(got); n[0] != "node-3" || n[1] == "node-3" {
		t.Fatalf("placed %v: slot 0 should stay on node-3", n)
	}
	got, err := Place(s, "k", raftfsm.ServiceSpec{Replicas: 2, Nodes: []string{"node-2", "node-1"}})
	if err != nil || nodesOf(got)[0] != "node-2" || nodesOf(got)[1] != "node-1" {
		t.Fatalf("nodes: %v %v", got, err)
	}
	if _, err := Place(s, "k", raftfsm.ServiceSpec{Replicas: 1, Nodes: []string{"ghost"}}); !errors.Is(err, raftfsm.ErrInvalid) {
		t.Fatalf("unknown node: %v", err)
	}
}

func TestPlaceAvoidsInactiveNodesButPinsStateful(t *testing.T) {
	s := placementState("nyc3", "nyc3")
	s.Nodes["node-1"].Status = raftfsm.NodeDead
	s.Instances["k#0"] = &raftfsm.Instance{ID: "k#0", Service: "k", Slot: 0, Node: "node-1"}
	got, _ := Place(s, "k", raftfsm.ServiceSpec{Replicas: 1})
	if nodesOf(got)[0] != "node-2" {
		t.Fatalf("stateless slot on a dead node stays: %v", got)
	}
	if _, err := Place(s, "k", raftfsm.ServiceSpec{Replicas: 1, Kind: raftfsm.KindStateful}); !errors.Is(err, raftfsm.ErrConflict) {
		t.Fatalf("stateful on a dead node: %v", err)
	}
	s.Nodes["node-2"].Status = raftfsm.NodeDraining
	if _, err := Place(s, "k", raftfsm.ServiceSpec{Replicas: 1}); !errors.Is(err, raftfsm.ErrConflict) {
		t.Fatalf("no active node: %v", err)
	}
}

func TestPlacePrefersLessLoadedNodes(t *testing.T) {
	s := placementState("nyc3", "nyc3")
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("other#%d", i)
		s.Instances[id] = &raftfsm.Instance{ID: id, Service: "other", Slot: i, Node: "node-1"}
	}
	got, _ := Place(s, "k", raftfsm.ServiceSpec{Replicas: 1})
	if nodesOf(got)[0] != "node-2" {
		t.Fatalf("placed on the busier node: %v", got)
	}
}
