package controller

import (
	"testing"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/raftfsm"
)

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
