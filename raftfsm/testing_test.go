package raftfsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// t0 is the fixed clock of the tests: commands carry their time.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const testWS = "9fe5e6"

// testAEAD is a fixed-key AEAD for sealing in tests.
func testAEAD(t testing.TB) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// fixture is an FSM with an initialised cluster and three active nodes.
type fixture struct {
	t     testing.TB
	fsm   *FSM
	index uint64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, fsm: NewFSM(nil)}
	f.must(&InitCluster{At: t0, ClusterID: "c0ffee", ClusterName: "test", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: testWS})
	for i := 1; i <= 3; i++ {
		f.must(&UpsertNode{At: t0, Node: Node{ID: fmt.Sprintf("node-%d", i), Region: "nyc3",
			PublicIP: fmt.Sprintf("127.0.0.%d", i+1), PrivateIP: fmt.Sprintf("127.0.0.%d", i+1),
			API: fmt.Sprintf("127.0.0.%d:9999", i+1)}})
	}
	return f
}

// apply applies c at the next index and returns its result.
func (f *fixture) apply(c Command) (any, error) {
	f.index++
	return f.fsm.ApplyCommand(f.index, c)
}

// must applies c and fails the test on an error.
func (f *fixture) must(c Command) any {
	f.t.Helper()
	v, err := f.apply(c)
	if err != nil {
		f.t.Fatalf("apply %s: %v", c.Type(), err)
	}
	return v
}

// refuse applies c, expects an error, and checks the state did not change.
func (f *fixture) refuse(c Command) error {
	f.t.Helper()
	before := f.stateJSON()
	_, err := f.apply(c)
	if err == nil {
		f.t.Fatalf("apply %s: accepted, want an error", c.Type())
	}
	if after := f.stateJSON(); after != before {
		f.t.Fatalf("apply %s refused (%v) but changed the state", c.Type(), err)
	}
	return err
}

// stateJSON is the state without its index, for equality checks.
func (f *fixture) stateJSON() string {
	var out string
	f.fsm.View(func(s *State) {
		c := *s
		c.Index = 0
		b, err := json.Marshal(&c)
		if err != nil {
			f.t.Fatal(err)
		}
		out = string(b)
	})
	return out
}

func (f *fixture) view(fn func(s *State)) { f.fsm.View(fn) }

func webSpec() ServiceSpec {
	return ServiceSpec{Project: "shop", Env: "prod", Service: "web", Image: "127.0.0.1:5000/shop/web:1.4", Port: 8080,
		Hosts: []string{"shop.example.com"}, Replicas: 2, Vars: map[string]string{"LOG_LEVEL": "info"}}
}

// deploy submits spec with slots placed on nodes in order and returns the result.
func (f *fixture) deploy(id string, spec ServiceSpec, nodes ...string) DeployResult {
	f.t.Helper()
	var placement []Assignment
	for i, n := range nodes {
		placement = append(placement, Assignment{Slot: i, Node: n})
	}
	return f.must(&DeployService{At: t0, DeployID: id, WorkspaceID: testWS, Spec: spec, Placement: placement}).(DeployResult)
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func rawLog(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
