package node

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/compose"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// containerIDs maps every container of the cluster's node 1 to its id, by name.
func containerIDs(t *testing.T, rt *runtime.Runtime, c *testCluster) map[string]string {
	t.Helper()
	list, err := rt.List(context.Background(), map[string]string{runtime.LabelManaged: "true"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ctr := range list {
		if strings.Contains(ctr.Name, c.nodes[0].cfg.ContainerSuffix) && ctr.Running {
			out[ctr.Name] = ctr.ID
		}
	}
	return out
}

func generations(a *Agent) map[string]int64 {
	out := map[string]int64{}
	a.View(func(s *raftfsm.State) {
		for k, svc := range s.Services {
			out[k] = svc.Generation
		}
	})
	return out
}

// TestReapplyUnchangedComposeChangesNothing deploys a Compose file (a cache
// and a web service that depends on it, on real Docker), applies it again
// (nothing is committed, no container replaced, every result says
// unchanged), then changes one variable of web: only web gets a new
// generation and a new container; the cache keeps its container.
func TestReapplyUnchangedComposeChangesNothing(t *testing.T) {
	c, rt := runtimeCluster(t)
	img := runtimetest.BuildTestImage(t, rt, "reapply", nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	write := func(level string) {
		doc := `name: shop
services:
  cache:
    image: ` + img + `
    labels: {dropmesh.kind: stateful}
    expose: ["6379"]
    environment: {PORT: "6379", CACHE_PASSWORD: hunter2-hunter2}
  web:
    image: ` + img + `
    ports: ["8080"]
    environment: {LOG_LEVEL: ` + level + `}
    depends_on: [cache]
`
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func() []raftfsm.ServiceSpec {
		res, err := compose.Load(context.Background(), []string{file}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return res.Specs
	}
	leader := c.leader()
	apply := func() []raftfsm.DeployResult {
		var out []raftfsm.DeployResult
		for _, spec := range load() {
			res, err := leader.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec, Actor: "test"})
			if err != nil {
				t.Fatalf("deploy %s: %v", spec.Service, err)
			}
			if !res.Unchanged {
				c.waitState(leader, 90e9, "deploy "+res.DeployID, func(s *raftfsm.State) bool {
					p, ok := control.DeployProgressOf(s, res.DeployID)
					return ok && p.Done && p.Deploy.Status == raftfsm.DeploySucceeded
				})
			}
			out = append(out, res)
		}
		return out
	}

	write("info")
	for _, r := range apply() {
		if r.Unchanged {
			t.Fatalf("first apply of %s says unchanged", r.Service)
		}
	}
	gens, ids := generations(leader.agent), containerIDs(t, rt, c)
	if len(ids) != 2 {
		t.Fatalf("want 2 running containers, have %v", ids)
	}
	deploys := deployCount(leader.agent)

	for _, r := range apply() {
		if !r.Unchanged {
			t.Fatalf("second apply of an unchanged file deployed %s again (generation %d)", r.Service, r.Generation)
		}
	}
	if got := generations(leader.agent); !maps.Equal(got, gens) {
		t.Fatalf("generations moved: %v -> %v", gens, got)
	}
	if got := deployCount(leader.agent); got != deploys {
		t.Fatalf("an unchanged apply committed %d deploys", got-deploys)
	}
	if got := containerIDs(t, rt, c); !maps.Equal(got, ids) {
		t.Fatalf("containers replaced: %v -> %v", ids, got)
	}

	write("debug")
	var changed []string
	for _, r := range apply() {
		if !r.Unchanged {
			changed = append(changed, r.Service)
		}
	}
	if len(changed) != 1 || !strings.HasSuffix(changed[0], "/web") {
		t.Fatalf("changing web's environment redeployed %v", changed)
	}
	waitFor(t, 60e9, "the old web container to go", func() bool { return len(containerIDs(t, rt, c)) == 2 })
	after := containerIDs(t, rt, c)
	for name, id := range ids {
		if strings.Contains(name, "_cache") && after[name] != id {
			t.Fatalf("cache container replaced (%s -> %s) though only web changed", id, after[name])
		}
		if strings.Contains(name, "_web") && after[name] == id {
			t.Fatalf("web container %s kept though its environment changed", id)
		}
	}
}

func deployCount(a *Agent) (n int) {
	a.View(func(s *raftfsm.State) { n = len(s.Deploys) })
	return n
}
