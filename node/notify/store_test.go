package notify

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/node/testkit"
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
	testkit.WaitFor(t, 10*time.Second, "leadership", store.IsLeader)
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
	// The URL is stored sealed, as the agent puts it: the notifier opens it
	// with the cluster's state key.
	block, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	aead, _ := cipher.NewGCM(block)
	hook := raftfsm.Webhook{ID: "ops", URL: r.URL() + "/Xk9d2s3cr3t", Format: raftfsm.WebhookGeneric}
	if err := raftfsm.SealWebhookURL(aead, &hook); err != nil {
		t.Fatal(err)
	}
	apply(&raftfsm.PutSealedWebhook{At: t0, Webhook: hook})
	var stateJSON []byte
	store.FSM().View(func(s *raftfsm.State) { stateJSON, _ = json.Marshal(s) })
	if bytes.Contains(stateJSON, []byte("Xk9d2s3cr3t")) {
		t.Fatal("the state JSON shows the webhook URL")
	}
	seq := apply(&raftfsm.AppendEvent{At: t0.Add(time.Second), Event: raftfsm.Event{Kind: raftfsm.EventHealReboot, Message: "power-cycling node-2"}}).(uint64)
	cfg2 := testConfig(t)
	cfg2.Sealer = aead
	startRun(t, StoreSource(store), cfg2)
	testkit.WaitFor(t, 10*time.Second, "the delivery", func() bool { return len(r.requests()) == 1 })
	if got := r.generic(t)[0]; got.Seq != seq || got.Cluster != "raft" || r.requests()[0].cursor != seq {
		t.Fatalf("delivered %+v with the cursor at %d, want seq %d after the cursor passed it", got, r.requests()[0].cursor, seq)
	}
}
