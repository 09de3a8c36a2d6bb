package raftfsm

import (
	"strings"
	"testing"
)

// FuzzDecodeApply feeds arbitrary log entries to the decoder and the FSM,
// over a state with a cluster, three nodes and a deployed service (so
// reports and changes reach real records): no handler may panic (Apply
// turns a panic into an "internal error" result, which fails here), and a
// refused entry must leave the state unchanged. The seed corpus lives in
// testdata/fuzz/FuzzDecodeApply.
func FuzzDecodeApply(f *testing.F) {
	for _, c := range []Command{
		&DeployService{At: t0, DeployID: "d", WorkspaceID: testWS, Spec: webSpec(), Placement: []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}},
		&ReportHealth{At: t0, Node: "node-1", Results: []HealthReport{{Instance: "x#0", Status: HealthHealthy, CheckedAt: t0}}},
		&UpsertNode{At: t0, Node: Node{ID: "node-9", PublicIP: "1.2.3.4"}},
		&ResolveIntent{At: t0, Changes: CloudChanges{DNS: &DNSHost{Host: "a.example.com", IPs: []string{"1.1.1.1"}}}},
	} {
		data, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		fx := newFixture(t)
		fx.must(&DeployService{At: t0, DeployID: "d", WorkspaceID: testWS, Spec: webSpec(), Placement: []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}})
		before := fx.stateJSON()
		fx.index++
		r := fx.fsm.Apply(rawLog(fx.index, entry)).(*Result)
		if r.Err != nil && strings.Contains(r.Err.Error(), "internal error") {
			t.Fatalf("a handler panicked: %v", r.Err)
		}
		if r.Err != nil && fx.stateJSON() != before {
			t.Fatalf("refused entry changed the state: %v", r.Err)
		}
	})
}
