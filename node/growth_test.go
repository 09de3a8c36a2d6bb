package node

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestLeaderKilledWhileGrowingLeavesNoDuplicates kills the leader while it
// is creating droplets; the next leader finishes the growth from the
// intents in the state, and the fake cloud holds exactly the droplets asked
// for.
func TestLeaderKilledWhileGrowingLeavesNoDuplicates(t *testing.T) {
	opts := fakeapi.DefaultOptions()
	fake, err := fakeapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { fake.Close() })

	c := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL = srv.URL
		cfg.Init.BaseSnapshot = "dropmesh-test-base"
		cfg.ClusterName = "grow"
	})
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	// Creating a droplet takes three seconds: time to kill the leader mid-way.
	if err := fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Latency: 3 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	token, want := opts.Token, 5
	if token == "" {
		token = fakeapi.DefaultToken
	}
	if err := leader.agent.UpdateSettings(context.Background(), control.SettingsRequest{DOToken: &token, Regions: []string{"nyc3"}, DesiredNodes: &want}); err != nil {
		t.Fatal(err)
	}
	c.waitState(leader, 20*time.Second, "a create intent", func(s *raftfsm.State) bool {
		for _, in := range s.Cloud.PendingIntents() {
			if in.Kind == raftfsm.IntentCreateDroplet {
				return true
			}
		}
		return false
	})
	c.stop(leader, true)
	next := c.leader()
	// Growth goes on to five live nodes (the dead leader gets a replacement too).
	var recorded map[string]bool
	c.waitState(next, 2*time.Minute, "the growth to settle", func(s *raftfsm.State) bool {
		recorded = map[string]bool{}
		for name := range s.Cloud.Droplets {
			recorded[name] = true
		}
		return len(recorded) >= 2 && len(s.Cloud.PendingIntents()) == 0
	})
	names := map[string]int{}
	for _, d := range fake.State().Droplets {
		names[d.Name]++
	}
	for name, n := range names {
		if n != 1 || !strings.HasPrefix(name, "grow-node-") {
			t.Fatalf("droplet %s exists %d times (all: %v)", name, n, names)
		}
		if !recorded[name] {
			t.Fatalf("the fake cloud has %s, which the state does not know (state %v)", name, recorded)
		}
	}
	if len(names) != len(recorded) {
		t.Fatalf("fake cloud %v, state %v", names, recorded)
	}
}
