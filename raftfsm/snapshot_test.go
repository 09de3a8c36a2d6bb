package raftfsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// randomCommands builds a reproducible mix of valid and invalid commands over
// the fixture's three nodes.
func randomCommands(r *rand.Rand, n int) []Command {
	nodes := []string{"node-1", "node-2", "node-3"}
	services := []string{"web", "api", "worker", "db"}
	var out []Command
	var deploys []string
	at := t0
	for i := 0; i < n; i++ {
		at = at.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
		svc := services[r.IntN(len(services))]
		key := ServiceKey(testWS, "shop", "prod", svc)
		inst := InstanceID(key, r.IntN(2))
		node := nodes[r.IntN(len(nodes))]
		switch r.IntN(33) {
		case 0, 1:
			spec := ServiceSpec{Project: "shop", Env: "prod", Service: svc, Image: fmt.Sprintf("img:%d", r.IntN(5)), Port: 8080, Replicas: 1 + r.IntN(2)}
			if svc == "worker" {
				spec.Port = 0
			}
			if svc == "db" {
				spec.Kind, spec.Replicas = KindStateful, 1
			}
			var placement []Assignment
			for s := 0; s < spec.Replicas; s++ {
				placement = append(placement, Assignment{Slot: s, Node: nodes[(s+r.IntN(3))%3]})
			}
			deploys = append(deploys, fmt.Sprintf("d%d", i))
			out = append(out, &DeployService{At: at, DeployID: fmt.Sprintf("d%d", i), WorkspaceID: testWS, Spec: spec, Placement: placement})
		case 2:
			out = append(out, &AdvanceRollout{At: at, Service: key, Generation: int64(r.IntN(3)), Instances: []string{inst}})
		case 3:
			out = append(out, &ReportInstances{At: at, Node: node, Reports: []InstanceReport{{Instance: inst, Generation: 1, ContainerID: fmt.Sprint(i), State: "running", Phase: "routed"}}})
		case 4:
			st := []string{HealthHealthy, HealthDegraded, HealthUnhealthy}[r.IntN(3)]
			out = append(out, &ReportHealth{At: at, Node: node, Results: []HealthReport{{Instance: inst, Status: st, CheckedAt: at}}})
		case 5:
			out = append(out, &RestartInstance{At: at, Instance: inst, Reason: "test"})
		case 6:
			out = append(out, &RecordPings{At: at, Results: []PingResult{{Node: node, OK: r.IntN(2) == 0}}})
		case 7:
			id := "none"
			if len(deploys) > 0 {
				id = deploys[len(deploys)-1-r.IntN(min(len(deploys), 3))]
			}
			out = append(out, &FinishDeploy{At: at, DeployID: id, Status: []string{DeploySucceeded, DeployFailed}[r.IntN(2)], Reason: "test"})
		case 8:
			out = append(out, &RecordIntent{At: at, Intent: Intent{ID: fmt.Sprintf("i%d", i), Kind: IntentEnsureDNS, Target: "shop.example.com"}})
			out = append(out, &ResolveIntent{At: at, IntentID: fmt.Sprintf("i%d", i), Status: IntentDone,
				Changes: CloudChanges{DNS: &DNSHost{Host: "shop.example.com", IPs: []string{"127.0.0.2"}}}})
		case 9:
			out = append(out, &MoveInstance{At: at, Instance: inst, Node: node, Reason: "test"})
		case 10:
			out = append(out, &UndeployService{At: at, Service: key})
		case 11:
			out = append(out, &AppendEvent{At: at, Event: Event{Kind: "test", Message: "m"}})
		case 12:
			n := 3 + r.IntN(3)
			iv := Duration(time.Duration(1+r.IntN(60)) * time.Second)
			out = append(out, &UpdateSettings{At: at, DesiredNodes: &n, HealthInterval: &iv})
		case 13:
			name := fmt.Sprintf("user%d", r.IntN(3))
			out = append(out, &PutUser{At: at, Name: name, PasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", Role: RoleViewer})
		case 14:
			out = append(out, &DeleteUser{At: at, Name: fmt.Sprintf("user%d", r.IntN(3))})
		case 15:
			st := []NodeStatus{NodeActive, NodeDead, NodeRebooting}[r.IntN(3)]
			out = append(out, &SetNodeStatus{At: at, Node: node, Status: st, Reason: "test"})
		case 16:
			out = append(out, &UpsertNode{At: at, Node: Node{ID: node, Region: "nyc3", PublicIP: fmt.Sprintf("127.0.1.%d", r.IntN(9)+1)}})
		case 17:
			ws := fmt.Sprintf("%06x", r.IntN(4))
			out = append(out, &CreateWorkspace{At: at, ID: ws, Name: "ws-" + ws})
			out = append(out, &CreateProject{At: at, WorkspaceID: ws, Name: "p"})
			out = append(out, &CreateEnvironment{At: at, WorkspaceID: ws, Project: "p", Name: "staging"})
		case 18:
			out = append(out, &DeleteWorkspace{At: at, ID: fmt.Sprintf("%06x", r.IntN(4))})
		case 19:
			out = append(out, &RecordCronRun{At: at, Node: node, Instance: inst, StartedAt: at.Add(-time.Second), FinishedAt: at, ExitCode: r.IntN(2)})
		case 20:
			out = append(out, &PurgeHistory{At: at, Before: at.Add(-time.Duration(r.IntN(3600)) * time.Second)})
		case 21:
			id := fmt.Sprintf("hook-%d", r.IntN(2))
			out = append(out, &PutWebhook{At: at, Webhook: Webhook{ID: id, URL: "https://hooks.example.com/" + id, Format: WebhookGeneric}})
		case 22:
			out = append(out, &DeleteWebhook{At: at, ID: fmt.Sprintf("hook-%d", r.IntN(2))})
		case 23:
			out = append(out, &AdvanceNotified{At: at, Seq: uint64(r.IntN(i + 1))})
		case 24:
			out = append(out, &PutBuildContext{At: at, Digest: "sha256:" + strings.Repeat(fmt.Sprintf("%02x", r.IntN(4)), 32), Size: int64(r.IntN(1000) + 1), Node: node})
		case 25:
			out = append(out, &PutSnapshot{At: at, Snapshot: Snapshot{Name: fmt.Sprintf("snap-%d", r.IntN(2)), Kind: "custom", Status: "building", CreatedAt: at, UpdatedAt: at}})
		case 26:
			out = append(out, &SetStranded{At: at, Service: key, Reason: "test"})
		case 27:
			out = append(out, &RemoveNode{At: at, Node: node, Reason: "test"})
		case 28:
			out = append(out, &SetClusterCA{At: at, CACertPEM: testCACert(), CAKey: "v1:AAAA"})
		case 29:
			out = append(out, &RecordNodeCert{At: at, Cert: NodeCert{Serial: fmt.Sprintf("%x", i+1), Node: node, NotBefore: at,
				NotAfter: at.Add(time.Duration(1+r.IntN(3600)) * time.Second)}})
		case 30:
			out = append(out, &RevokeCerts{At: at, Node: node, Reason: "test"})
		case 31:
			out = append(out, &CreateJoinToken{At: at, Token: JoinToken{Hash: HashJoinToken(fmt.Sprint(r.IntN(4))), Purpose: "droplet",
				ExpiresAt: at.Add(time.Duration(1+r.IntN(600)) * time.Second)}})
		case 32:
			out = append(out, &UseJoinToken{At: at, Hash: HashJoinToken(fmt.Sprint(r.IntN(4))), UsedBy: node})
		}
	}
	return out
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func TestRandomCommandsSnapshotRestoreEqual(t *testing.T) {
	appliedTypes := map[CommandType]bool{}
	defer func() {
		// Every type the generator makes must have been applied somewhere,
		// or the snapshot check never saw what that type changes.
		made := map[CommandType]bool{}
		for _, c := range randomCommands(rand.New(rand.NewPCG(1, 1)), 2000) {
			made[c.Type()] = true
		}
		for ty := range made {
			if !appliedTypes[ty] {
				t.Errorf("no %s command was ever applied: the generator only makes refused ones", ty)
			}
		}
	}()
	for seed := uint64(1); seed <= 5; seed++ {
		f := newFixture(t)
		applied := 0
		for _, c := range randomCommands(rand.New(rand.NewPCG(seed, seed)), 400) {
			if _, err := f.apply(c); err == nil {
				applied++
				appliedTypes[c.Type()] = true
			}
		}
		if applied < 100 {
			t.Fatalf("seed %d: only %d of 400 commands applied; the generator is too weak", seed, applied)
		}
		data := snapshotBytes(t, f.fsm)
		g := NewFSM(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(f.fsm.Clone())
		b, _ := json.Marshal(g.Clone())
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: restored state differs", seed)
		}
		if g.Index() != f.fsm.Index() {
			t.Fatalf("index %d != %d", g.Index(), f.fsm.Index())
		}
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	cmds := randomCommands(rand.New(rand.NewPCG(42, 7)), 500)
	a, b := newFixture(t), newFixture(t)
	for _, c := range cmds {
		_, errA := a.apply(c)
		_, errB := b.apply(c)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: %v vs %v", c.Type(), errA, errB)
		}
	}
	if a.stateJSON() != b.stateJSON() {
		t.Fatal("two replicas diverged")
	}
}

func TestRestoreRefusesUnknownFormat(t *testing.T) {
	f := NewFSM(nil)
	for doc, want := range map[string]string{
		`{"format": 99, "state": {}}`: "format 99 is newer than this version reads (format 2): upgrade dropmesh",
		`{"state": {}}`:               "not a dropmesh state snapshot",
	} {
		err := f.Restore(io.NopCloser(strings.NewReader(doc)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("restore %s: err %v, want %q", doc, err, want)
		}
	}
	if err := f.Restore(io.NopCloser(strings.NewReader(`not json`))); err == nil {
		t.Fatal("garbage restored")
	}
	// A format-1 document with missing maps restores to a usable state.
	if err := f.Restore(io.NopCloser(strings.NewReader(`{"format": 1, "state": {"index": 7}}`))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ApplyCommand(8, &UpsertNode{At: t0, Node: Node{ID: "node-1"}}); err != nil {
		t.Fatalf("apply after sparse restore: %v", err)
	}
}

func TestChangedAndWaitIndex(t *testing.T) {
	f := newFixture(t)
	ch := f.fsm.Changed()
	idx := f.fsm.Index()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		done <- f.fsm.WaitIndex(ctx, idx+1)
	}()
	f.must(&AppendEvent{At: t0, Event: Event{Kind: "k", Message: "m"}})
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("Changed not closed")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(20 * time.Millisecond)
	defer cancel()
	if err := f.fsm.WaitIndex(ctx, idx+100); err == nil {
		t.Fatal("WaitIndex returned for an index never applied")
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }
