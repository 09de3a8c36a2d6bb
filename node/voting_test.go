package node

import (
	"context"
	"errors"
	"maps"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/compose"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// standinImage is runtimetest.BuildStandinImage.
func standinImage(t testing.TB, rt *runtime.Runtime, name string, port int) string {
	t.Helper()
	return runtimetest.BuildStandinImage(t, rt, name, port)
}

// discoveryCluster is a cluster of n nodes with Docker and discovery on;
// its containers and workspace networks are removed when the test ends.
func discoveryCluster(t testing.TB, rt *runtime.Runtime, n int) *testCluster {
	t.Helper()
	c := startCluster(t, n, func(i int, cfg *Config) { cfg.NoRuntime, cfg.Discovery = false, "on" })
	t.Cleanup(func() {
		var wss []string
		c.nodes[0].agent.View(func(s *raftfsm.State) { wss = raftfsm.SortedKeys(s.Workspaces) })
		c.stopAll()
		removeClusterContainers(t, rt, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, n := range c.nodes {
			for _, ws := range wss {
				if err := rt.RemoveNetwork(ctx, "dropmesh-"+ws+n.cfg.ContainerSuffix); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
		}
	})
	return c
}

// deployAll deploys specs in order into workspace ws, each after the one
// before is live (as the CLI does), and returns the results.
func (c *testCluster) deployAll(ws string, specs []raftfsm.ServiceSpec) []raftfsm.DeployResult {
	c.t.Helper()
	leader := c.leader()
	var out []raftfsm.DeployResult
	for _, spec := range specs {
		spec = spec.Clone()
		spec.Workspace = ws
		// A leader change (a loaded machine) refuses the write: ask the
		// new leader. Deploys are idempotent, so one that was committed
		// after all answers unchanged.
		var res raftfsm.DeployResult
		deadline := time.Now().Add(time.Minute)
		for {
			var err error
			res, err = leader.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec, Actor: "test"})
			if err == nil {
				break
			}
			if !errors.Is(err, control.ErrNotLeader) || time.Now().After(deadline) {
				c.t.Fatalf("deploy %s: %v", spec.Service, err)
			}
			leader = c.leader()
		}
		if !res.Unchanged {
			var d raftfsm.Deploy
			c.waitState(c.leader(), 2*time.Minute, "deploy of "+spec.Service, func(s *raftfsm.State) bool {
				p, ok := control.DeployProgressOf(s, res.DeployID)
				d = p.Deploy
				return ok && p.Done
			})
			if d.Status != raftfsm.DeploySucceeded {
				c.t.Fatalf("deploy %s: %s %s", spec.Service, d.Status, d.Reason)
			}
		}
		out = append(out, res)
	}
	return out
}

// running is one serving container of a service, as the state has it.
type running struct {
	service, node, container, id string
}

// servingContainers lists the serving container of every instance of
// workspace ws (name or id) by service name, waiting until each is
// reported and healthy.
func (c *testCluster) servingContainers(ws string, want int) map[string]running {
	c.t.Helper()
	out := map[string]running{}
	c.waitState(c.leader(), time.Minute, "every instance healthy", func(s *raftfsm.State) bool {
		w := s.ResolveWorkspace(ws)
		if w == nil {
			return false
		}
		clear(out)
		for _, in := range s.Instances {
			svc := s.Services[in.Service]
			if svc == nil || svc.WorkspaceID != w.ID {
				continue
			}
			if in.ContainerID == "" || (in.Health != raftfsm.HealthHealthy && in.Health != raftfsm.HealthDegraded) {
				return false
			}
			out[svc.Name] = running{service: svc.Name, node: in.Node, container: in.Container, id: in.ContainerID}
		}
		return len(out) == want
	})
	return out
}

func (c *testCluster) node(id string) *testNode {
	for _, n := range c.nodes {
		if n.cfg.NodeID == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// probe is runtimetest.Probe.
func probe(t *testing.T, rt *runtime.Runtime, container string, addrs ...string) (string, bool) {
	t.Helper()
	return runtimetest.Probe(t, rt, container, addrs...)
}

// TestVotingAppFindsServicesByName deploys Docker's example voting app
// (its Compose file unchanged but for stand-in images) on a 3-node mesh,
// twice, in two workspaces: from inside every container each other
// service answers by its Compose name on its port, across nodes, and it is
// its own workspace's instance that answers; a container cannot reach the
// other workspace's services; a second apply changes nothing; and after
// the stateful redis moves to another node its name follows it without
// restarting the services that use it.
func TestVotingAppFindsServicesByName(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	t.Setenv("STANDIN_VOTE", standinImage(t, rt, "vote", 80))
	t.Setenv("STANDIN_RESULT", standinImage(t, rt, "result", 80))
	t.Setenv("STANDIN_WORKER", standinImage(t, rt, "worker", 0))
	t.Setenv("STANDIN_REDIS", standinImage(t, rt, "redis", 6379))
	t.Setenv("STANDIN_POSTGRES", standinImage(t, rt, "postgres", 5432))
	loaded, err := compose.Load(context.Background(), []string{"testdata/voting-app/compose.yaml"}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range loaded.Warnings {
		t.Logf("compose: %s", w)
	}
	c := discoveryCluster(t, rt, 3)
	ports := map[string]int{}
	for _, s := range loaded.Specs {
		if s.Port > 0 {
			ports[s.Service] = s.Port
		}
	}
	if len(loaded.Specs) != 5 || len(ports) != 4 || ports["redis"] != 6379 || ports["db"] != 5432 || ports["vote"] != 80 {
		t.Fatalf("mapped %d services with ports %v", len(loaded.Specs), ports)
	}

	workspaces := []string{"first", "second"}
	serving := map[string]map[string]running{}
	for _, ws := range workspaces {
		c.deployAll(ws, loaded.Specs)
		serving[ws] = c.servingContainers(ws, 5)
	}
	nodesUsed := map[string]bool{}
	for _, r := range serving["first"] {
		nodesUsed[r.node] = true
	}
	if len(nodesUsed) < 2 {
		t.Fatalf("every service on one node (%v): nothing crosses nodes", nodesUsed)
	}

	// Every service answers every other by name, and the answer comes from
	// the caller's own workspace.
	for _, ws := range workspaces {
		for _, from := range serving[ws] {
			var addrs []string
			for name, port := range ports {
				if name != from.service {
					addrs = append(addrs, name+":"+strconv.Itoa(port))
				}
			}
			out, ok := probe(t, rt, from.id, addrs...)
			if !ok {
				res, _ := rt.Exec(context.Background(), from.id, []string{"/testapp", "resolve", "redis", "1"})
				t.Fatalf("%s/%s on %s cannot reach every service by name:\n%s\nresolve redis: %s", ws, from.service, from.node, out, res.Output)
			}
			for name := range ports {
				if name == from.service {
					continue
				}
				if want := serving[ws][name].id[:12]; !strings.Contains(out, want) {
					t.Fatalf("%s/%s: %s was not answered by its own workspace's container %s:\n%s", ws, from.service, name, want, out)
				}
			}
		}
	}

	// The other workspace's services are out of reach: its virtual address
	// on this node, and its containers' own addresses.
	vote := serving["first"]["vote"]
	n := c.node(vote.node)
	var secondID string
	n.agent.View(func(s *raftfsm.State) { secondID = s.ResolveWorkspace("second").ID })
	if _, err := n.agent.discovery.Network(context.Background(), secondID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the second workspace's redis address on "+vote.node, func() bool {
		_, ok := n.agent.discovery.ServiceAddr(secondID, loaded.Specs[0].Project+"/prod/redis")
		return ok
	})
	vip, _ := n.agent.discovery.ServiceAddr(secondID, loaded.Specs[0].Project+"/prod/redis")
	if out, ok := probe(t, rt, vote.id, net.JoinHostPort(vip.String(), "6379")); ok {
		t.Fatalf("first/vote reached the second workspace's redis at %s:\n%s", vip, out)
	}
	for _, other := range serving["second"] {
		if other.node != vote.node || ports[other.service] == 0 {
			continue
		}
		info, err := rt.Inspect(context.Background(), other.id)
		if err != nil {
			t.Fatal(err)
		}
		if out, ok := probe(t, rt, vote.id, net.JoinHostPort(info.IP, strconv.Itoa(ports[other.service]))); ok {
			t.Fatalf("first/vote reached second/%s's container at %s:\n%s", other.service, info.IP, out)
		}
	}

	// A second apply changes nothing.
	before := map[string]string{}
	for _, r := range serving["first"] {
		before[r.service] = r.id
	}
	for _, res := range c.deployAll("first", loaded.Specs) {
		if !res.Unchanged {
			t.Fatalf("second apply redeployed %s", res.Service)
		}
	}
	after := map[string]string{}
	for _, r := range c.servingContainers("first", 5) {
		after[r.service] = r.id
	}
	if !maps.Equal(before, after) {
		t.Fatalf("second apply replaced containers: %v -> %v", before, after)
	}

	// redis moves to another node: its name follows, the services that use
	// it keep their containers.
	redis := serving["first"]["redis"]
	// (Not where the second workspace's redis runs: stateful services
	// publish their fixed port on the node's private address.)
	var target string
	for _, n := range c.nodes {
		if n.cfg.NodeID != redis.node && n.cfg.NodeID != serving["second"]["redis"].node {
			target = n.cfg.NodeID
			break
		}
	}
	var moved raftfsm.ServiceSpec
	for _, s := range loaded.Specs {
		if s.Service == "redis" {
			moved = s.Clone()
		}
	}
	moved.Nodes = []string{target}
	c.deployAll("first", []raftfsm.ServiceSpec{moved})
	now := c.servingContainers("first", 5)
	if now["redis"].node != target || now["redis"].id == redis.id {
		t.Fatalf("redis did not move: %+v", now["redis"])
	}
	for _, user := range []string{"vote", "worker"} {
		if now[user].id != before[user] {
			t.Fatalf("%s was restarted when redis moved", user)
		}
	}
	waitFor(t, 15*time.Second, "redis's name to follow it", func() bool {
		out, ok := probe(t, rt, now["vote"].id, "redis:6379")
		return ok && strings.Contains(out, now["redis"].id[:12])
	})
}
