package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// keyIDsEverywhere reports whether every running node of c has exactly ids
// installed (the primary first).
func (c *testCluster) keyIDsEverywhere(ids ...string) bool {
	for _, n := range c.nodes {
		if n.agent != nil && !slices.Equal(n.agent.mesh.KeyIDs(), ids) {
			return false
		}
	}
	return true
}

// TestGossipKeyRotation: the cluster moves to a new gossip key without a
// restart; a restarted agent keeps gossiping with it; a newcomer with only
// the cluster secret cannot join any more, one given the new key can.
func TestGossipKeyRotation(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	derived := mesh.KeyID(leader.agent.keys.GossipKey)
	waitFor(t, 20*time.Second, "every node on the derived key", func() bool { return c.keyIDsEverywhere(derived) })

	info, err := leader.agent.RotateGossipKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Rotation == nil || info.Rotation.Phase != raftfsm.GossipInstall || info.Primary != derived {
		t.Fatalf("rotation started as %+v", info)
	}
	next := info.Rotation.NewID
	if _, err := leader.agent.RotateGossipKey(context.Background()); !errors.Is(err, raftfsm.ErrConflict) {
		// The first one cannot be done yet: its steps wait on gossip rounds.
		t.Fatalf("a second rotation during the first: %v, want a conflict", err)
	}
	waitFor(t, 30*time.Second, "the rotation to finish everywhere", func() bool {
		done := false
		leader.agent.View(func(s *raftfsm.State) { done = s.Gossip.Rotation == nil && s.Gossip.Primary == next })
		return done && c.keyIDsEverywhere(next)
	})
	// Gossip goes on under the new key alone: every node's metadata update
	// (its new key list) reaches every other node.
	waitFor(t, 15*time.Second, "every member alive and advertising only the new key everywhere", func() bool {
		for _, n := range c.nodes {
			for _, m := range n.agent.Members() {
				if m.Status != mesh.StatusAlive || m.Meta.Keys != next {
					return false
				}
			}
		}
		return true
	})
	var events []string
	leader.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Items {
			if strings.Contains(e.Message, "gossip key") {
				events = append(events, e.Message)
			}
		}
	})
	if len(events) != 3 {
		t.Fatalf("rotation events %q: want started, installed, rotated", events)
	}

	// A restart keeps the new key: it gossips before its log has caught up.
	follower := c.nodes[0]
	if follower == leader {
		follower = c.nodes[1]
	}
	c.stop(follower, false)
	follower.cfg.Join = []string{leader.cfg.addr(leader.cfg.GossipPort)}
	c.start(follower)
	waitFor(t, 30*time.Second, follower.cfg.NodeID+" alive everywhere after its restart", func() bool {
		return c.allSee(follower.cfg.NodeID, mesh.StatusAlive) && c.keyIDsEverywhere(next)
	})

	// The derived key is gone: an enrolled node that gossips with only the
	// key derived from the cluster secret stays out. A node that enrolls
	// with a join token gets the current keys in its join answer and gets in.
	keys, err := leader.agent.wantedGossipKeys(currentKeyring(leader.agent))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outsider := &testNode{cfg: testConfig(t, dir, 4)}
	c.joinConfig(&outsider.cfg)
	if err := Enroll(t.Context(), outsider.cfg, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	secretKeys, err := DeriveKeys(c.secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(outsider.cfg.DataDir, gossipKeysFileName), encodeGossipKeys([][]byte{secretKeys.GossipKey})[0]+"\n"); err != nil {
		t.Fatal(err)
	}
	octx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, errc, err := RunAgent(octx, outsider.cfg, testOptions(t)); err == nil {
			<-errc
		}
	}()
	stays(t, 3*time.Second, "an agent with only the derived key stays out", func() bool {
		_, known := memberStatus(leader.agent, "node-4")
		return !known
	})
	stop()
	<-done

	newcomer := &testNode{cfg: testConfig(t, t.TempDir(), 5)}
	c.joinConfig(&newcomer.cfg)
	c.start(newcomer)
	waitFor(t, 30*time.Second, "the newcomer with the new key alive everywhere", func() bool { return c.allSee("node-5", mesh.StatusAlive) })
	got, err := os.ReadFile(filepath.Join(newcomer.cfg.DataDir, gossipKeysFileName))
	if err != nil || strings.Fields(string(got))[0] != encodeGossipKeys(keys)[0] {
		t.Fatalf("the newcomer's gossip keys %q (%v), want the rotated %v first", got, err, encodeGossipKeys(keys))
	}
}

func currentKeyring(a *Agent) raftfsm.GossipKeyring {
	var g raftfsm.GossipKeyring
	a.View(func(s *raftfsm.State) { g = s.Gossip })
	return g
}

func TestGossipKeysFlag(t *testing.T) {
	if _, err := parseGossipKeys([]string{strings.Repeat("ab", 32), "zz"}); err == nil {
		t.Fatal("a key that is not hex was accepted")
	}
	if _, err := parseGossipKeys([]string{strings.Repeat("ab", 31)}); err == nil {
		t.Fatal("a short key was accepted")
	}
	keys, err := parseGossipKeys([]string{strings.Repeat("ab", 32), strings.Repeat("cd", 32)})
	if err != nil || len(keys) != 2 || keys[0][0] != 0xab {
		t.Fatalf("parsed %v, %v", keys, err)
	}
	if got := encodeGossipKeys(keys); got[1] != strings.Repeat("cd", 32) {
		t.Fatalf("encoded %v", got)
	}
}
