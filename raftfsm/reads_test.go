package raftfsm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A linearizable read: the leader confirms its leadership and names an
// index; a follower that waits for it sees every write acknowledged before.
func TestReadIndexThenWaitAppliedSeesEveryAcknowledgedWrite(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Right after the election nothing but raft's own no-op may follow the
	// FSM's last entry: the wait must still end.
	idx, err := leader.store.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.store.WaitApplied(ctx, idx); err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
	}
	for round := 0; round < 20; round++ {
		acked := writeEvents(t, leader, "w"+string(rune('a'+round)), 1)
		idx, err := leader.store.ReadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if err := n.store.WaitApplied(ctx, idx); err != nil {
				t.Fatalf("%s: %v", n.id, err)
			}
			if !hasEvents(n, acked) {
				t.Fatalf("%s applied %d but misses the write acknowledged before the read", n.id, idx)
			}
		}
	}
	for _, n := range nodes {
		if n != leader {
			if _, err := n.store.ReadIndex(ctx); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("follower read index: %v, want ErrNotLeader", err)
			}
		}
	}
	// A barrier, raft's own entry, is last in the log now.
	if err := leader.store.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	idx, err = leader.store.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.store.WaitApplied(ctx, idx); err != nil {
			t.Fatalf("%s after a barrier: %v", n.id, err)
		}
	}
	// A wait for an index nobody wrote ends with the caller's deadline.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := nodes[0].store.WaitApplied(short, idx+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait beyond the log: %v, want a deadline error", err)
	}
}

// A restarted node serves nothing until it heard from a leader and caught
// up with what it had applied before it stopped.
func TestRestartedNodeCatchesUpBeforeItServes(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	acked := writeEvents(t, leader, "before", 30)
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	waitFor(t, 5*time.Second, "the follower to replicate", func() bool { return hasEvents(follower, acked) })
	if err := follower.store.CatchUp(); err != nil {
		t.Fatalf("a running, current follower: %v", err)
	}
	applied := follower.fsm.Index()
	for _, n := range nodes {
		n.stop(t)
	}
	// Alone, the follower knows no leader: it must not serve its snapshot
	// or its empty state.
	follower.start(t)
	if got := follower.store.ReadFloor(); got < applied {
		t.Fatalf("floor %d, want at least the %d applied before the stop", got, applied)
	}
	if err := follower.store.CatchUp(); !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("alone after a restart: %v, want ErrCatchingUp", err)
	}
	for _, n := range nodes {
		if n != follower {
			n.start(t)
		}
	}
	waitFor(t, 15*time.Second, "the restarted node to catch up", func() bool { return follower.store.CatchUp() == nil })
	if follower.fsm.Index() < applied || !hasEvents(follower, acked) {
		t.Fatalf("caught up at %d without the %d entries it had before", follower.fsm.Index(), applied)
	}
	c := follower.store.StaleContact(context.Background())
	if c.Leader == "" || !c.Known {
		t.Fatalf("contact after catching up: %+v", c)
	}
}

// The FSM refuses a deadlined command the leader appended after its
// deadline, on every replica alike, and changes nothing.
func TestDeadlinedCommandRefusedWhenAppendedLate(t *testing.T) {
	f := newFixture(t)
	before := f.stateJSON()
	deadline := t0.Add(time.Second)
	cmd, err := WithDeadline(&AppendEvent{At: t0, Event: Event{Kind: "test", Message: "late"}}, deadline)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	late := rawLog(100, data)
	late.AppendedAt = deadline.Add(time.Millisecond)
	r := f.fsm.Apply(late).(*Result)
	if !errors.Is(r.Err, ErrDeadlinePassed) || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("late entry: %v, want ErrDeadlinePassed", r.Err)
	}
	if f.stateJSON() != before {
		t.Fatal("a refused late entry changed the state")
	}
	onTime := rawLog(101, data)
	onTime.AppendedAt = deadline
	if r := f.fsm.Apply(onTime).(*Result); r.Err != nil {
		t.Fatalf("entry appended at its deadline: %v", r.Err)
	}
	if !hasEvents(&testNode{fsm: f.fsm}, []string{"late"}) {
		t.Fatal("the on-time entry was not applied")
	}
	if _, err := WithDeadline(cmd, deadline); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrapping twice: %v", err)
	}
}

// gatedLogs freezes log writes while closed: a leader whose disk (or whole
// process) stalls.
type gatedLogs struct {
	raft.LogStore
	mu      sync.Mutex
	gate    chan struct{}
	blocked atomic.Int32
}

func (g *gatedLogs) wait() {
	g.mu.Lock()
	ch := g.gate
	g.mu.Unlock()
	if ch != nil {
		g.blocked.Add(1)
		<-ch
		g.blocked.Add(-1)
	}
}

func (g *gatedLogs) freeze() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedLogs) thaw() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *gatedLogs) StoreLog(l *raft.Log) error { g.wait(); return g.LogStore.StoreLog(l) }

func (g *gatedLogs) StoreLogs(ls []*raft.Log) error { g.wait(); return g.LogStore.StoreLogs(ls) }

// A write that waits on a frozen leader past its caller's deadline is not
// applied once the leader thaws, on any node; the caller is told its
// outcome is unknown, not that it may retry.
func TestWriteQueuedOnFrozenLeaderPastItsDeadlineIsNotApplied(t *testing.T) {
	gates := map[string]*gatedLogs{}
	var mu sync.Mutex
	nodes := tcpCluster(t, 3, func(c *StoreConfig) {
		id := c.NodeID
		c.WrapLogs = func(l raft.LogStore) raft.LogStore {
			g := &gatedLogs{LogStore: l}
			mu.Lock()
			gates[id] = g
			mu.Unlock()
			return g
		}
		// A long lease and election timeout: the frozen leader stays leader,
		// as a leader that stalls briefly does.
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 2*time.Second
	})
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "warm", 3)
	mu.Lock()
	gate := gates[leader.id]
	mu.Unlock()

	gate.freeze()
	t.Cleanup(gate.thaw)
	// The first write holds the leader's loop in its frozen disk write; the
	// second waits in raft's queue behind it.
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := leader.store.Apply(ctx, &AppendEvent{At: t0, Event: Event{Kind: "test", Message: "first"}})
		first <- err
	}()
	waitFor(t, 5*time.Second, "the first write to reach the frozen log", func() bool {
		return gate.blocked.Load() > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	dl, _ := ctx.Deadline()
	late, err := WithDeadline(&AppendEvent{At: t0, Event: Event{Kind: "test", Message: "late"}}, dl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = leader.store.Apply(ctx, late)
	cancel()
	if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrNotLeader) {
		t.Fatalf("write past its deadline on a frozen leader: %v, want ErrOutcomeUnknown", err)
	}
	gate.thaw()
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	// After a later write, every node has applied whatever the late one became.
	acked := writeEvents(t, leader, "after", 1)
	idx, err := leader.store.ReadIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.store.WaitApplied(context.Background(), idx); err != nil {
			t.Fatal(err)
		}
		if !hasEvents(n, acked) || hasEvents(n, []string{"late"}) {
			t.Fatalf("%s: the write whose caller gave up was applied", n.id)
		}
	}
	// A command whose deadline passed before Apply is not even handed to raft.
	gone, cancelGone := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelGone()
	before := leader.store.raft.LastIndex()
	if _, err := leader.store.Apply(gone, &AppendEvent{At: t0, Event: Event{Kind: "test", Message: "gone"}}); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("write after its deadline: %v, want a deadline error that says it was not applied", err)
	}
	if leader.store.raft.LastIndex() != before {
		t.Fatal("a write whose deadline had passed reached the log")
	}
}

// A leader cut off from its quorum while the others elect a new one (as
// one that was paused is), then back, confirms nothing: its read index
// fails, and a stale read on it does not present its state as the
// leader's current one.
func TestCutOffLeaderServesNothingAsCurrent(t *testing.T) {
	var nodes []*testNode
	var servers []Server
	trs := map[string]*raft.InmemTransport{}
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		trs[id] = tr
		cfg := DefaultStoreConfig()
		cfg.NodeID, cfg.Transport = id, tr
		nodes = append(nodes, &testNode{id: id, addr: string(addr), cfg: cfg})
		servers = append(servers, Server{ID: id, Address: string(addr), Voter: true})
	}
	for _, a := range trs {
		for _, b := range trs {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	for _, n := range nodes {
		n.start(t)
		if err := n.store.BootstrapServers(servers); err != nil {
			t.Fatal(err)
		}
	}
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "before", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := leader.store.ReadIndex(ctx); err != nil {
		t.Fatalf("read index with a quorum: %v", err)
	}
	if c := leader.store.StaleContact(ctx); c.Leader != leader.id || !c.Known {
		t.Fatalf("stale contact on a confirmed leader: %+v", c)
	}
	trs[leader.id].DisconnectAll()
	for id, tr := range trs {
		if id != leader.id {
			tr.Disconnect(raft.ServerAddress(leader.id))
		}
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	next := leaderOf(t, rest)
	writeEvents(t, next, "after", 3)
	// The old leader comes back (resumed): whatever it believes, it
	// confirms nothing.
	for id, tr := range trs {
		if id != leader.id {
			tr.Connect(raft.ServerAddress(leader.id), trs[leader.id])
			trs[leader.id].Connect(raft.ServerAddress(id), tr)
		}
	}
	if _, err := leader.store.ReadIndex(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("read index on the old leader: %v, want ErrNotLeader", err)
	}
	if c := leader.store.StaleContact(ctx); c.Leader == leader.id {
		t.Fatalf("a cut-off leader still presents itself as the leader: %+v", c)
	}
	if leader.store.IsLeader() {
		t.Fatal("the cut-off leader did not step down")
	}
}
