package node

import (
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestLeaderKilledWhileGrowingLeavesNoDuplicates kills the leader in the
// worst moment of growing the cluster: DigitalOcean has created the droplet,
// but the answer never reached the leader, so the state does not know it.
// The next leader finishes the growth from the intents in the state, finds
// that droplet by name instead of creating another, and the fake cloud ends
// with exactly the droplets asked for.
func TestLeaderKilledWhileGrowingLeavesNoDuplicates(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	fakeSnapshot(t, url, "dropmesh-test-base", "nyc3")
	c := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL = url
		cfg.Init.BaseSnapshot = "dropmesh-test-base"
		cfg.ClusterName = "grow"
		cfg.CloudPollInterval = 100 * time.Millisecond
	})
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	// The first create happens at the provider, and its answer is held until
	// the client gives up: the leader dies waiting for it.
	if err := fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", ServeFirst: true, Latency: time.Hour, Times: 1}); err != nil {
		t.Fatal(err)
	}
	want := 5
	enableDO(t, leader, func(r *control.SettingsRequest) { r.DesiredNodes = &want })
	var first string
	waitFor(t, 30*time.Second, "a droplet created at the provider and not yet known to the state", func() bool {
		inFake := fakeClusterDroplets(t, fake, leader)
		found := false
		leader.agent.View(func(s *raftfsm.State) {
			for _, in := range s.Cloud.PendingIntents() {
				if _, known := s.Cloud.Droplets[in.Target]; in.Kind == raftfsm.IntentCreateDroplet && inFake[in.Target] == 1 && !known {
					first, found = in.Target, true
				}
			}
		})
		return found
	})
	c.stop(leader, true)
	next := c.leader()
	if next == leader {
		t.Fatal("the killed node still leads")
	}

	// Growth goes on to five live nodes: the two test nodes left and three
	// droplets (the killed leader, once dead, is replaced and forgotten).
	live := 0
	c.waitState(next, 2*time.Minute, "the growth to settle at DesiredNodes", func(s *raftfsm.State) bool {
		if n, ok := s.Nodes[leader.cfg.NodeID]; ok && n.Status != raftfsm.NodeDead {
			return false // not yet seen dead: it is still counted
		}
		live = 0
		for _, n := range s.Nodes {
			if n.Status != raftfsm.NodeDead {
				live++
			}
		}
		return len(s.Cloud.PendingIntents()) == 0 && live+len(s.Cloud.Droplets) == want
	})
	var recorded map[string]bool
	next.agent.View(func(s *raftfsm.State) {
		recorded = map[string]bool{}
		for name := range s.Cloud.Droplets {
			recorded[name] = true
		}
	})
	inFake := fakeClusterDroplets(t, fake, next)
	if len(inFake) != want-live || len(recorded) != want-live {
		t.Fatalf("fake cloud %v, state %v: want exactly %d droplets (%d nodes asked for, %d live test nodes)",
			inFake, recorded, want-live, want, live)
	}
	for name, n := range inFake {
		if n != 1 {
			t.Fatalf("droplet %s exists %d times (all: %v)", name, n, inFake)
		}
		if !recorded[name] {
			t.Fatalf("the fake cloud has %s, which the state does not know (state %v)", name, recorded)
		}
	}
	if !recorded[first] {
		t.Fatalf("the droplet whose answer was lost, %s, was not adopted (state %v)", first, recorded)
	}
	if posts := fake.Requests("POST /v2/droplets"); posts != want-live+1 { // +1: the base snapshot's builder
		t.Fatalf("%d droplet creates sent, want %d: one was repeated", posts, want-live+1)
	}
}
