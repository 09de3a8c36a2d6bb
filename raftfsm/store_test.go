package raftfsm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testNode is one raft server of a test cluster.
type testNode struct {
	id, dir, addr string
	cfg           StoreConfig
	store         *Store
	fsm           *FSM
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startNode opens the node's store (again, if it was closed).
func (n *testNode) start(t testing.TB) {
	t.Helper()
	n.fsm = NewFSM(nil)
	s, err := OpenStore(n.cfg, n.fsm)
	if err != nil {
		t.Fatal(err)
	}
	n.store = s
	t.Cleanup(func() { s.Close() })
}

func (n *testNode) stop(t testing.TB) {
	t.Helper()
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	n.store = nil
}

// tcpCluster starts size nodes over real TCP and mutual TLS (certificates
// from one test CA) with bolt stores in temp dirs.
func tcpCluster(t testing.TB, size int, mut func(*StoreConfig)) []*testNode {
	t.Helper()
	return tlsCluster(t, newTestPKI(t), size, mut)
}

func tlsCluster(t testing.TB, p *testPKI, size int, mut func(*StoreConfig)) []*testNode {
	t.Helper()
	var nodes []*testNode
	var servers []Server
	base := t.TempDir()
	for i := 1; i <= size; i++ {
		id := "node-" + strconv.Itoa(i)
		cfg := DefaultStoreConfig()
		cfg.NodeID, cfg.Dir, cfg.BindAddr = id, filepath.Join(base, id), freeAddr(t)
		cfg.TLS = p.node(id)
		if mut != nil {
			mut(&cfg)
		}
		nodes = append(nodes, &testNode{id: id, dir: cfg.Dir, addr: cfg.BindAddr, cfg: cfg})
		servers = append(servers, Server{ID: id, Address: cfg.BindAddr, Voter: true})
	}
	for _, n := range nodes {
		n.start(t)
		if err := n.store.BootstrapServers(servers); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// inmemCluster starts size nodes over raft's in-memory transport.
func inmemCluster(t testing.TB, size int) []*testNode {
	t.Helper()
	var nodes []*testNode
	var servers []Server
	transports := map[string]*raft.InmemTransport{}
	for i := 1; i <= size; i++ {
		id := "node-" + strconv.Itoa(i)
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		transports[id] = tr
		cfg := DefaultStoreConfig()
		cfg.NodeID, cfg.Transport = id, tr
		nodes = append(nodes, &testNode{id: id, addr: string(addr), cfg: cfg})
		servers = append(servers, Server{ID: id, Address: string(addr), Voter: true})
	}
	for _, a := range transports {
		for _, b := range transports {
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
	return nodes
}

func leaderOf(t testing.TB, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.store != nil && n.store.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// writeEvents applies count AppendEvent commands through the leader and returns how many were acknowledged.
func writeEvents(t testing.TB, leader *testNode, prefix string, count int) []string {
	t.Helper()
	var acked []string
	for i := 0; i < count; i++ {
		msg := fmt.Sprintf("%s-%d", prefix, i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := leader.store.Apply(ctx, &AppendEvent{At: t0, Event: Event{Kind: "test", Message: msg}})
		cancel()
		if err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
		acked = append(acked, msg)
	}
	return acked
}

func hasEvents(n *testNode, msgs []string) bool {
	found := 0
	n.fsm.View(func(s *State) {
		have := map[string]bool{}
		for _, e := range s.Events.Items {
			have[e.Message] = true
		}
		for _, m := range msgs {
			if have[m] {
				found++
			}
		}
	})
	return found == len(msgs)
}

func testFailover(t *testing.T, nodes []*testNode) {
	leader := leaderOf(t, nodes)
	acked := writeEvents(t, leader, "before", 20)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, acked) })
	}
	// A follower refuses writes with ErrNotLeader.
	for _, n := range nodes {
		if n != leader {
			if _, err := n.store.Apply(context.Background(), &AppendEvent{At: t0, Event: Event{Kind: "x", Message: "y"}}); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("follower write: %v, want ErrNotLeader", err)
			}
			break
		}
	}
	oldTerm := leader.store.Term()
	leader.stop(t)
	var survivors []*testNode
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	next := leaderOf(t, survivors)
	if next.store.Term() <= oldTerm {
		t.Fatalf("new leader's term %d not above %d", next.store.Term(), oldTerm)
	}
	acked = append(acked, writeEvents(t, next, "after", 20)...)
	for _, n := range survivors {
		waitFor(t, 5*time.Second, n.id+" to have every acknowledged write", func() bool { return hasEvents(n, acked) })
	}
}

func TestInmemClusterFailover(t *testing.T) {
	testFailover(t, inmemCluster(t, 3))
}

func TestTCPClusterFailoverAndRestart(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	testFailover(t, nodes)
	// The old leader restarts from its data dir and catches up on what it missed.
	var old *testNode
	for _, n := range nodes {
		if n.store == nil {
			old = n
		}
	}
	old.start(t)
	leader := leaderOf(t, nodes)
	acked := writeEvents(t, leader, "rejoin", 5)
	waitFor(t, 10*time.Second, "the restarted node to catch up", func() bool {
		return hasEvents(old, acked) && old.fsm.Index() >= leader.fsm.Index()
	})
}

func TestSnapshotInstalledOnLaggingNode(t *testing.T) {
	nodes := tcpCluster(t, 3, func(c *StoreConfig) {
		c.TrailingLogs = 10
		c.SnapshotThreshold = 50
	})
	leader := leaderOf(t, nodes)
	var lagging *testNode
	for _, n := range nodes {
		if n != leader {
			lagging = n
			break
		}
	}
	lagging.stop(t)
	acked := writeEvents(t, leader, "while-down", 200)
	if err := leader.store.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// The log the lagging node needs is compacted away: it must get the snapshot.
	acked = append(acked, writeEvents(t, leader, "after-snapshot", 20)...)
	lagging.start(t)
	waitFor(t, 15*time.Second, "the lagging node to catch up", func() bool { return hasEvents(lagging, acked) })
	if lagging.store.Stats()["last_snapshot_index"] == "0" {
		t.Fatal("the lagging node caught up without installing a snapshot")
	}
}

func TestStoreMembership(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 1, nil)
	leader := leaderOf(t, nodes)
	extra := &testNode{id: "node-2", cfg: DefaultStoreConfig()}
	extra.cfg.NodeID, extra.cfg.Dir, extra.cfg.BindAddr = "node-2", t.TempDir(), freeAddr(t)
	extra.cfg.TLS = p.node("node-2")
	extra.start(t)
	ctx := context.Background()
	if err := leader.store.AddNonvoter(ctx, "node-2", extra.cfg.BindAddr); err != nil {
		t.Fatal(err)
	}
	acked := writeEvents(t, leader, "m", 3)
	waitFor(t, 5*time.Second, "the non-voter to replicate", func() bool { return hasEvents(extra, acked) })
	if err := leader.store.AddVoter(ctx, "node-2", extra.cfg.BindAddr); err != nil {
		t.Fatal(err)
	}
	servers, err := leader.store.Servers(ctx)
	if err != nil || len(servers) != 2 || !servers[1].Voter {
		t.Fatalf("servers %+v %v", servers, err)
	}
	if err := leader.store.DemoteVoter(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	if err := leader.store.RemoveServer(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	servers, _ = leader.store.Servers(ctx)
	if len(servers) != 1 {
		t.Fatalf("servers after remove %+v", servers)
	}
}

// TestLeadershipChangedSignals: a leadership transfer closes the channel of
// the node that loses leadership and of the one that gains it, and each
// reads its new role after the signal.
func TestLeadershipChangedSignals(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	old := leaderOf(t, nodes)
	chans := map[*testNode]<-chan struct{}{}
	for _, n := range nodes {
		chans[n] = n.store.LeadershipChanged()
	}
	if err := old.store.TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	wait := func(n *testNode) {
		t.Helper()
		select {
		case <-chans[n]:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s got no leadership signal", n.id)
		}
	}
	wait(old)
	if old.store.IsLeader() {
		t.Fatalf("%s still leads after its signal", old.id)
	}
	var next *testNode
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		for _, n := range nodes {
			if n != old && n.store.IsLeader() {
				next = n
				return true
			}
		}
		return false
	})
	wait(next)
	if !next.store.IsLeader() {
		t.Fatalf("%s got a signal but does not lead", next.id)
	}
}

func TestConcurrentWritesAllApplied(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := leader.store.Apply(context.Background(), &AppendEvent{At: t0, Event: Event{Kind: "c", Message: fmt.Sprintf("w%d-%d", w, i)}}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, "replication", func() bool {
			var count uint64
			n.fsm.View(func(s *State) { count = s.Events.NextSeq })
			return count >= 400
		})
	}
}

// TestRaftCompactsItsLogByItself: with no Snapshot call, raft's own
// threshold takes a snapshot on every node and the log is trimmed to the
// trailing entries, so it does not grow without bound.
func TestRaftCompactsItsLogByItself(t *testing.T) {
	nodes := tcpCluster(t, 3, func(c *StoreConfig) {
		c.SnapshotThreshold = 64
		c.SnapshotInterval = 100 * time.Millisecond // raft checks at a random time up to twice this
		c.TrailingLogs = 16
	})
	leader := leaderOf(t, nodes)
	acked := writeEvents(t, leader, "compact", 300)
	for _, n := range nodes {
		waitFor(t, 30*time.Second, n.id+" to snapshot and trim its log", func() bool {
			st := n.store.Stats()
			snap, _ := strconv.ParseUint(st["last_snapshot_index"], 10, 64)
			if snap < 64 {
				return false
			}
			// Compaction drops everything up to the snapshot (or up to
			// TrailingLogs before the end): the log starts after it.
			first, err := n.store.FirstLogIndex()
			return err == nil && first > 1 && first <= snap+1
		})
		waitFor(t, 10*time.Second, n.id+" to hold every write", func() bool { return hasEvents(n, acked) })
	}
}
