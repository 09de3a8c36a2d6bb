package node

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/metrics"
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

// A command whose fields need a newer protocol than some server advertises
// is refused at the leader, before commit, with an error that names the
// server, its protocol and the one needed; once every server is new it goes.
func TestProtoConflictForFieldsNewerThanTheType(t *testing.T) {
	servers := []raftfsm.Server{{ID: "a", Voter: true}, {ID: "b", Voter: true}}
	at := func(protos map[string]int) func(string) (mesh.Member, bool) {
		return func(id string) (mesh.Member, bool) {
			return mesh.Member{ID: id, Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Proto: protos[id], Version: "v" + strconv.Itoa(protos[id])}}, true
		}
	}
	need := raftfsm.Protocol + 1 // a field added after this release
	err := protoConflictAt(need, "update_settings", servers, at(map[string]int{"a": need, "b": raftfsm.Protocol}))
	if !errors.Is(err, raftfsm.ErrConflict) || !errors.Is(err, raftfsm.ErrProtocol) {
		t.Fatalf("err = %v, want ErrConflict and ErrProtocol", err)
	}
	for _, want := range []string{"voter b", "protocol " + strconv.Itoa(raftfsm.Protocol), "needs protocol " + strconv.Itoa(need), "upgrade it first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q; want it to say %q", err, want)
		}
	}
	if err := protoConflictAt(need, "update_settings", servers, at(map[string]int{"a": need, "b": need})); err != nil {
		t.Fatalf("every server new: %v", err)
	}
	// The agent advertises the protocol its FSM decodes at.
	if raftfsm.NeededProtocol(&raftfsm.SetEgressAllow{}) > raftfsm.Protocol {
		t.Fatal("this release cannot apply its own newest command")
	}
}

// An entry the FSM cannot decode is counted in the metrics and queued as
// an error event naming the node and the entry; a full queue drops the
// event (the count and the FSM's error log remain), never blocking the FSM.
func TestUndecodableEntryIsCountedAndQueuedAsAnEvent(t *testing.T) {
	a := &Agent{cfg: Config{NodeID: "node-7"}, metrics: metrics.New(nil, "node-7"), undecodable: make(chan raftfsm.Event, 1)}
	a.reportUndecodable(42, raftfsm.ErrUnknownCommand)
	a.reportUndecodable(43, raftfsm.ErrUnknownCommand) // the queue is full: dropped, not blocking
	ev := <-a.undecodable
	if ev.Kind != raftfsm.EventEntryUndecodable || ev.Severity != raftfsm.SeverityError || ev.Node != "node-7" ||
		!strings.Contains(ev.Message, "entry 42") || !strings.Contains(ev.Message, "unknown command type") {
		t.Fatalf("event %+v", ev)
	}
	fams, err := a.metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, f := range fams {
		if f.GetName() == "dropmesh_raft_undecodable_entries_total" {
			got = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 2 {
		t.Fatalf("dropmesh_raft_undecodable_entries_total = %v, want 2", got)
	}
}
