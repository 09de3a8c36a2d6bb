package node

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func voters(t testing.TB, a *Agent) map[string]string {
	info, err := a.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range info.Members {
		if m.Status == "alive" {
			out[m.ID] = m.Raft
		}
	}
	return out
}

func allVoters(roles map[string]string, ids ...string) bool {
	for _, id := range ids {
		if roles[id] != "voter" {
			return false
		}
	}
	return true
}

func TestAgentsFormAClusterFromOneSeed(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	c.waitState(leader, 10*time.Second, "three registered nodes", func(s *raftfsm.State) bool {
		return len(s.Nodes) == 3 && s.Settings.Initialized && s.Users["admin"] != nil
	})

	// The API answers /ping without a key and /v1/cluster only with it.
	n2 := c.nodes[1]
	resp, err := http.Get("http://" + n2.agent.APIAddr() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	var ping map[string]string
	json.NewDecoder(resp.Body).Decode(&ping)
	resp.Body.Close()
	if ping["node"] != "node-2" {
		t.Fatalf("ping %v", ping)
	}
	resp, err = http.Get("http://" + n2.agent.APIAddr() + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/cluster without a key: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+n2.agent.APIAddr()+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+n2.agent.Keys().APIKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info control.ClusterInfo
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Leader.ID != leader.cfg.NodeID || len(info.Members) != 3 {
		t.Fatalf("cluster %+v", info)
	}
}

func TestLeaderCrashElectsANewLeaderAndLosesNothing(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	ws, err := leader.agent.CreateWorkspace(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	c.stop(leader, true)
	next := c.leader()
	if next == leader {
		t.Fatal("the crashed node is still leader")
	}
	c.waitState(next, 5*time.Second, "the acknowledged workspace", func(s *raftfsm.State) bool { return s.Workspaces[ws.ID] != nil })
	// Writes work on the new leader; the old one comes back with its data dir and catches up.
	if _, err := next.agent.CreateWorkspace(context.Background(), "after"); err != nil {
		t.Fatal(err)
	}
	leader.cfg.Bootstrap = false
	leader.cfg.Join = []string{next.cfg.addr(next.cfg.GossipPort)}
	c.start(leader)
	c.waitState(leader, 15*time.Second, "the restarted node to catch up", func(s *raftfsm.State) bool {
		return s.WorkspaceByName("after") != nil
	})
	waitFor(t, 20*time.Second, "the restarted node to be a voter again", func() bool {
		return allVoters(voters(t, next.agent), "node-1", "node-2", "node-3")
	})
}

func TestGracefulLeaveShrinksTheVoterSet(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	var leaving *testNode
	for _, n := range c.nodes {
		if n != leader {
			leaving = n
			break
		}
	}
	c.stop(leaving, false)
	waitFor(t, 15*time.Second, "the voter set to shrink", func() bool {
		servers, err := leader.agent.store.Servers(context.Background())
		if err != nil {
			return false
		}
		for _, s := range servers {
			if s.ID == leaving.cfg.NodeID {
				return false
			}
		}
		return len(servers) == 2
	})
}
