package notify

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Through a real raft store: the cursor is a raft commit, then the POST.
func TestStoreSource(t *testing.T) {
	addr, tr := raft.NewInmemTransport("")
	cfg := raftfsm.DefaultStoreConfig()
	cfg.NodeID, cfg.Transport = "node-1", tr
	store, err := raftfsm.OpenStore(cfg, raftfsm.NewFSM(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.BootstrapServers([]raftfsm.Server{{ID: "node-1", Address: string(addr), Voter: true}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leadership", store.IsLeader)
	apply := func(c raftfsm.Command) any {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := store.Apply(ctx, c)
		if err != nil {
			t.Fatalf("apply %s: %v", c.Type(), err)
		}
		return v
	}
	apply(&raftfsm.InitCluster{At: t0, ClusterID: "c0ffee", ClusterName: "raft", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: "9fe5e6"})
	c := &cluster{t: t, fsm: store.FSM()} // for the receiver's cursor reads
	r := newReceiver(t, c, nil)
	apply(&raftfsm.PutWebhook{At: t0, Webhook: raftfsm.Webhook{ID: "ops", URL: r.URL(), Format: raftfsm.WebhookGeneric}})
	seq := apply(&raftfsm.AppendEvent{At: t0.Add(time.Second), Event: raftfsm.Event{Kind: raftfsm.EventHealReboot, Message: "power-cycling node-2"}}).(uint64)
	startRun(t, StoreSource(store), testConfig(t))
	waitFor(t, 10*time.Second, "the delivery", func() bool { return len(r.requests()) == 1 })
	if got := r.generic(t)[0]; got.Seq != seq || got.Cluster != "raft" || r.requests()[0].cursor != seq {
		t.Fatalf("delivered %+v with the cursor at %d, want seq %d after the cursor passed it", got, r.requests()[0].cursor, seq)
	}
}
