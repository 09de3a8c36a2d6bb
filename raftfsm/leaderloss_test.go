package raftfsm

import (
	"fmt"
	"testing"
	"time"
)

// slowTimers gives the followers of nodes heartbeat and election timeouts
// of a minute, so that within a test only leaderloss.go can start an
// election.
func slowTimers(t *testing.T, nodes []*testNode, leader *testNode) {
	t.Helper()
	for _, n := range nodes {
		if n == leader {
			continue
		}
		rc := n.store.raft.ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = time.Minute, time.Minute
		if err := n.store.raft.ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaderLossElectsAtOnce: when the leader's process goes (its
// connections end, its port refuses), a follower starts an election at
// once, without waiting for its heartbeat timer (a minute here), and the
// survivors commit again.
func TestLeaderLossElectsAtOnce(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	before := writeEvents(t, leader, "before", 3)
	var survivors []*testNode
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
			waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, before) })
		}
	}
	slowTimers(t, nodes, leader)
	if err := leader.store.Close(); err != nil {
		t.Fatal(err)
	}
	var next *testNode
	waitFor(t, 10*time.Second, "a survivor to lead", func() bool {
		for _, n := range survivors {
			if n.store.IsLeader() {
				next = n
				return true
			}
		}
		return false
	})
	after := writeEvents(t, next, "after", 3)
	for _, n := range survivors {
		waitFor(t, 5*time.Second, n.id+" to replicate after the failover", func() bool { return hasEvents(n, after) })
	}
}

// TestLeaderLossKeepsALiveLeader: a live leader's connections ending (its
// port still answers) start no election.
func TestLeaderLossKeepsALiveLeader(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "before", 3)
	slowTimers(t, nodes, leader)
	term := leader.store.raft.CurrentTerm()
	for round := 0; round < 3; round++ {
		for _, n := range nodes {
			if n != leader {
				n.store.Disconnect(leader.id) // the follower's side: it sees its leader's connections end
			}
		}
		acked := writeEvents(t, leader, fmt.Sprintf("round-%d", round), 3)
		for _, n := range nodes {
			waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, acked) })
		}
	}
	for _, n := range nodes {
		if got := n.store.raft.CurrentTerm(); got != term {
			t.Errorf("%s is at term %d, was %d: an election ran against a live leader", n.id, got, term)
		}
	}
	if !leader.store.IsLeader() {
		t.Error("the leader lost its leadership")
	}
}
