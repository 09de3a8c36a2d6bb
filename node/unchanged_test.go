package node

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/clusterconf"
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

// TestUnchangedDeployCases: the comparison the leader makes before
// committing: the same effective spec on the same nodes is unchanged
// (secrets compared opened, whatever their nonce); a changed field or
// secret, a move, a failed last deploy or a stale expected generation is not.
func TestUnchangedDeployCases(t *testing.T) {
	secret, err := clusterconf.NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := clusterconf.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	ws := "abcdef"
	key := raftfsm.ServiceKey(ws, "shop", "prod", "web")
	base := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "web", Image: "nginx:1", Port: 80, Replicas: 2,
		Secrets: map[string]string{"API_TOKEN": "t0ken"}}
	sealed := func(s raftfsm.ServiceSpec) raftfsm.ServiceSpec {
		s = s.Clone()
		s.Normalize()
		if err := raftfsm.SealSecrets(keys.Sealer, key, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	state := func(status string) *raftfsm.State {
		s := raftfsm.NewState()
		deployed := sealed(base)
		deployed.Workspace = ws
		s.Services[key] = &raftfsm.Service{Key: key, WorkspaceID: ws, Project: "shop", Env: "prod", Name: "web", Generation: 3, LiveGeneration: 3,
			LastDeploy: "dep-3", Spec: deployed}
		s.Deploys["dep-3"] = &raftfsm.Deploy{ID: "dep-3", Service: key, Generation: 3, Status: status}
		for slot, node := range []string{"n1", "n2"} {
			id := raftfsm.InstanceID(key, slot)
			s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Slot: slot, Node: node}
		}
		return s
	}
	placed := []raftfsm.Assignment{{Slot: 0, Node: "n1"}, {Slot: 1, Node: "n2"}}
	cmd := func(mut func(s *raftfsm.ServiceSpec), placement []raftfsm.Assignment, expect int64) *raftfsm.DeployService {
		s := base.Clone()
		if mut != nil {
			mut(&s)
		}
		return &raftfsm.DeployService{WorkspaceID: ws, Spec: sealed(s), Placement: placement, ExpectGeneration: expect}
	}
	if res, same := unchangedDeploy(state(raftfsm.DeploySucceeded), keys.Sealer, cmd(nil, placed, 0)); !same || res.Generation != 3 || res.DeployID != "dep-3" || !res.Unchanged {
		t.Fatalf("the same spec: %+v %v; want unchanged at generation 3", res, same)
	}
	if _, same := unchangedDeploy(state(raftfsm.DeployRolling), keys.Sealer, cmd(nil, placed, 3)); !same {
		t.Fatal("the same spec while its deploy rolls: not unchanged")
	}
	for name, c := range map[string]struct {
		status string
		cmd    *raftfsm.DeployService
	}{
		"image":           {raftfsm.DeploySucceeded, cmd(func(s *raftfsm.ServiceSpec) { s.Image = "nginx:2" }, placed, 0)},
		"secret":          {raftfsm.DeploySucceeded, cmd(func(s *raftfsm.ServiceSpec) { s.Secrets["API_TOKEN"] = "other" }, placed, 0)},
		"secret removed":  {raftfsm.DeploySucceeded, cmd(func(s *raftfsm.ServiceSpec) { s.Secrets = map[string]string{"OTHER_TOKEN": "x"} }, placed, 0)},
		"health":          {raftfsm.DeploySucceeded, cmd(func(s *raftfsm.ServiceSpec) { s.Health.Command = []string{"true"} }, placed, 0)},
		"moved":           {raftfsm.DeploySucceeded, cmd(nil, []raftfsm.Assignment{{Slot: 0, Node: "n3"}, {Slot: 1, Node: "n2"}}, 0)},
		"scaled":          {raftfsm.DeploySucceeded, cmd(func(s *raftfsm.ServiceSpec) { s.Replicas = 1 }, placed[:1], 0)},
		"last one failed": {raftfsm.DeployFailed, cmd(nil, placed, 0)},
		"stale expect":    {raftfsm.DeploySucceeded, cmd(nil, placed, 2)},
		"other workspace": {raftfsm.DeploySucceeded, &raftfsm.DeployService{WorkspaceID: "fedcba", Spec: sealed(base), Placement: placed}},
	} {
		if _, same := unchangedDeploy(state(c.status), keys.Sealer, c.cmd); same {
			t.Errorf("%s: called unchanged", name)
		}
	}
}
