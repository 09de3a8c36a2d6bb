package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// memberStatus is the status a running agent sees id in; known is false
// when it does not know id at all.
func memberStatus(a *Agent, id string) (status mesh.Status, known bool) {
	for _, m := range a.Members() {
		if m.ID == id {
			return m.Status, true
		}
	}
	return 0, false
}

// allSee reports whether every running node of c but id sees id as status.
func (c *testCluster) allSee(id string, status mesh.Status) bool {
	for _, n := range c.nodes {
		if n.agent == nil || n.cfg.NodeID == id {
			continue
		}
		if st, known := memberStatus(n.agent, id); !known || st != status {
			return false
		}
	}
	return true
}

// raftServers is the raft configuration as the leader has it.
func raftServers(t *testing.T, leader *testNode) (voters, nonvoters []string) {
	t.Helper()
	servers, err := leader.agent.store.Servers(context.Background())
	if err != nil {
		return nil, nil
	}
	for _, s := range servers {
		if s.Voter {
			voters = append(voters, s.ID)
		} else {
			nonvoters = append(nonvoters, s.ID)
		}
	}
	slices.Sort(voters)
	slices.Sort(nonvoters)
	return voters, nonvoters
}

// TestFiveAgents: five agents on their own loopback addresses, real gossip
// and raft over UDP and TCP, go through a node's crash and return, the
// leader's crash and the repair of the voter set, a stranger with another
// key, and a graceful leave.
func TestFiveAgents(t *testing.T) {
	c := startCluster(t, 5, func(_ int, cfg *Config) { cfg.DeadServerTimeout = 2 * time.Second })
	all := []string{"node-1", "node-2", "node-3", "node-4", "node-5"}
	leader := c.leader()
	waitFor(t, 30*time.Second, "five voters", func() bool { return allVoters(voters(t, leader.agent), all...) })

	// A follower crashes: every other node marks it dead; it comes back
	// with its data dir and keeps its place.
	var victim *testNode
	for _, n := range c.nodes {
		if n != leader {
			victim = n
		}
	}
	c.stop(victim, true)
	waitFor(t, 15*time.Second, victim.cfg.NodeID+" dead everywhere", func() bool { return c.allSee(victim.cfg.NodeID, mesh.StatusDead) })
	c.start(victim)
	waitFor(t, 30*time.Second, victim.cfg.NodeID+" alive everywhere again", func() bool { return c.allSee(victim.cfg.NodeID, mesh.StatusAlive) })
	waitFor(t, 30*time.Second, "five voters again", func() bool { return allVoters(voters(t, c.leader().agent), all...) })

	// The leader crashes: a new one is elected, writes go on, and once the
	// dead server timeout has passed it leaves the raft configuration,
	// whose voters stay an odd number the quorum can count on.
	old := c.leader()
	c.stop(old, true)
	next := c.leader()
	if next == old {
		t.Fatal("the crashed node still leads")
	}
	if _, err := next.agent.CreateWorkspace(context.Background(), "after-the-crash"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the dead leader out of the raft configuration", func() bool {
		v, nv := raftServers(t, next)
		return len(v)+len(nv) == 4 && !slices.Contains(v, old.cfg.NodeID) && !slices.Contains(nv, old.cfg.NodeID) && len(v)%2 == 1
	})
	// It comes back and is made a voter again: five of five.
	old.cfg.Join = []string{next.cfg.addr(next.cfg.GossipPort)}
	c.start(old)
	waitFor(t, 60*time.Second, "the old leader back as a voter", func() bool {
		v, _ := raftServers(t, c.leader())
		return slices.Equal(v, all)
	})
	c.waitState(old, 15*time.Second, "the old leader caught up", func(s *raftfsm.State) bool {
		return s.WorkspaceByName("after-the-crash") != nil
	})

	// An agent with another cluster's key cannot join: nobody ever sees it.
	other, err := NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	stranger := &testNode{cfg: testConfig(t, t.TempDir(), 6)}
	stranger.cfg.ClusterSecret = other.String()
	stranger.cfg.Join = []string{next.cfg.addr(next.cfg.GossipPort)}
	strangerCtx, stopStranger := context.WithCancel(context.Background())
	defer stopStranger()
	strangerDone := make(chan struct{})
	go func() {
		defer close(strangerDone)
		// It never gets in, so RunAgent returns only once it is stopped.
		if _, errc, err := RunAgent(strangerCtx, stranger.cfg, testOptions(t)); err == nil {
			<-errc
		}
	}()
	stays(t, 3*time.Second, "the stranger stays out", func() bool {
		for _, n := range c.nodes {
			if n.agent == nil {
				continue
			}
			if _, known := memberStatus(n.agent, "node-6"); known {
				return false
			}
		}
		return true
	})
	stopStranger()
	select {
	case <-strangerDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the stranger did not stop")
	}

	// A graceful leave shrinks the configuration at once (no timeout).
	leaving := c.nodes[len(c.nodes)-1]
	if leaving.agent.IsLeader() {
		leaving = c.nodes[len(c.nodes)-2]
	}
	c.stop(leaving, false)
	waitFor(t, 15*time.Second, "the configuration without "+leaving.cfg.NodeID, func() bool {
		v, nv := raftServers(t, c.leader())
		return len(v)+len(nv) == 4 && !slices.Contains(v, leaving.cfg.NodeID) && !slices.Contains(nv, leaving.cfg.NodeID)
	})
}

// stays fails the test if cond stops holding within d.
func stays(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s: it did not hold", what)
		}
		<-tick.C
	}
}
