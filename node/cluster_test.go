package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
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
	resp, err := c.cliHTTP().Get("https://" + n2.agent.APIAddr() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	var ping map[string]string
	json.NewDecoder(resp.Body).Decode(&ping)
	resp.Body.Close()
	if ping["node"] != "node-2" {
		t.Fatalf("ping %v", ping)
	}
	resp, err = c.cliHTTP().Get("https://" + n2.agent.APIAddr() + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v1/cluster without a key: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "https://"+n2.agent.APIAddr()+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+n2.agent.Keys().APIKey)
	resp, err = c.cliHTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info control.ClusterInfo
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Leader.ID != leader.cfg.NodeID || len(info.Members) != 3 {
		t.Fatalf("cluster %+v", info)
	}

	// Every agent serves its metrics behind the key: the leader counts its
	// commits, each node its gossip members and the API requests it served.
	resp, err = c.cliHTTP().Get("https://" + n2.agent.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without a key: %d", resp.StatusCode)
	}
	lm := scrape(t, leader)
	if v := metricValue(lm, "dropmesh_raft_leader", `node="`+leader.cfg.NodeID+`"`); v != 1 {
		t.Errorf("raft_leader on the leader = %v\n%s", v, lm)
	}
	if v := metricValue(lm, "dropmesh_raft_commit_duration_seconds_count"); v < 3 {
		t.Errorf("the leader counted %v commits; the nodes' registrations alone are 3", v)
	}
	m2 := scrape(t, n2)
	// A follower applies the log too, and probes its peers.
	if v := metricValue(m2, "dropmesh_raft_apply_duration_seconds_count"); v < 3 {
		t.Errorf("node-2 counted %v applies; the nodes' registrations alone are 3", v)
	}
	if v := metricValue(m2, "dropmesh_gossip_probe_rtt_seconds_count"); v < 1 {
		waitFor(t, 10*time.Second, "a gossip probe counted on node-2", func() bool {
			return metricValue(scrape(t, n2), "dropmesh_gossip_probe_rtt_seconds_count") >= 1
		})
	}
	if v := metricValue(m2, "dropmesh_gossip_members", `status="alive"`); v != 3 {
		t.Errorf("node-2 sees %v alive members\n%s", v, m2)
	}
	if v := metricValue(m2, "dropmesh_api_request_duration_seconds_count", `route="/v1/cluster"`, `code="200"`); v != 1 {
		t.Errorf("node-2 counted %v answered GET /v1/cluster\n%s", v, m2)
	}
}

// scrape reads n's /metrics with the API key.
func scrape(t *testing.T, n *testNode) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+n.agent.APIAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.agent.Keys().APIKey)
	resp, err := cliHTTPOf(n.agent).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics of %s: %d %s", n.cfg.NodeID, resp.StatusCode, body)
	}
	return string(body)
}

// metricValue is the value of the first sample of name whose labels
// contain every one of labels; -1 when there is none.
func metricValue(text, name string, labels ...string) float64 {
	for _, line := range strings.Split(text, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(series, l)
		}
		if v, err := strconv.ParseFloat(value, 64); matched && err == nil {
			return v
		}
	}
	return -1
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
	// It restarts as systemd would restart it: with its own config and no
	// --join (the seed never had one), and finds the mesh by itself.
	leader.cfg.Join = nil
	c.start(leader)
	c.waitState(leader, 15*time.Second, "the restarted node to catch up", func(s *raftfsm.State) bool {
		return s.WorkspaceByName("after") != nil
	})
	waitFor(t, 30*time.Second, "the restarted node alive in the others' gossip", func() bool {
		for _, m := range next.agent.Members() {
			if m.ID == leader.cfg.NodeID {
				return m.Status == mesh.StatusAlive
			}
		}
		return false
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
