package raftfsm

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
		&SetClusterCA{At: t0, CACertPEM: testCACert(), CAKey: "v1:AAAA"},
		&RecordNodeCert{At: t0, Cert: NodeCert{Serial: "a1", Node: "node-1", NotBefore: t0, NotAfter: t0.Add(time.Hour)}},
		&RevokeCerts{At: t0, Node: "node-1", Serials: []string{"a1"}},
		&CreateJoinToken{At: t0, Token: JoinToken{Hash: HashJoinToken("t"), Purpose: "droplet", ExpiresAt: t0.Add(time.Hour)}},
		&UseJoinToken{At: t0, Hash: HashJoinToken("t"), UsedBy: "node-4"},
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

// FuzzRPCGuard feeds arbitrary bytes, as a member's connection would carry
// them, through the guard that checks raft request headers: it must never
// panic, and whatever it lets through must be a prefix of what came in
// (it checks bytes, it never makes them up).
func FuzzRPCGuard(f *testing.F) {
	f.Add([]byte{0x00, 0x80})
	f.Add([]byte{0x02, 0x81, 0xa4, 'S', 'i', 'z', 'e', 0x05, 1, 2, 3, 4, 5})
	f.Add([]byte{0x09})
	f.Fuzz(func(t *testing.T, in []byte) {
		g := newRPCGuard(bytes.NewReader(in), func(uint8, *rpcHead) error { return nil })
		var out []byte
		buf := make([]byte, 7)
		for range 10000 {
			n, err := g.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("the guard let through bytes that did not come in")
		}
	})
}
