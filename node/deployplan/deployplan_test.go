package deployplan

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func testSealer(t *testing.T, key byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher([]byte(strings.Repeat(string(rune('a'+key)), 32)))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func TestPrepare(t *testing.T) {
	s := placementState("nyc3", "fra1")
	s.Workspaces["d3fa01"] = &raftfsm.Workspace{ID: "d3fa01", Name: raftfsm.DefaultWorkspaceName}
	s.Settings.UIHost = "mesh.example.com"
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ids := []string{"d3fa01", "a1b2c3"} // the first is taken
	req := func(spec raftfsm.ServiceSpec) Request {
		return Request{Spec: spec, Actor: "alice", At: at, DeployID: "dep-1", Sealer: testSealer(t, 0),
			NewWorkspaceID: func() string { id := ids[0]; ids = ids[1:]; return id }}
	}
	spec := raftfsm.ServiceSpec{Workspace: "shop-ws", Project: "shop", Env: "prod", Service: "web", Kind: raftfsm.KindService,
		Image: "web:1", Port: 8080, Replicas: 2, Hosts: []string{"shop.example.com"}, Secrets: map[string]string{"DB": "s3cret"}}
	cmd, err := Prepare(s, req(spec))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.WorkspaceID != "a1b2c3" || cmd.WorkspaceName != "shop-ws" || cmd.DeployID != "dep-1" || !cmd.At.Equal(at) || cmd.Actor != "alice" {
		t.Fatalf("command %+v", cmd)
	}
	if len(cmd.Spec.Secrets) != 0 || len(cmd.Spec.SealedSecrets) != 1 {
		t.Fatalf("secrets not sealed: %+v / %+v", cmd.Spec.Secrets, cmd.Spec.SealedSecrets)
	}
	if got := nodesOf(cmd.Placement); strings.Join(got, ",") != "node-2,node-1" && strings.Join(got, ",") != "node-1,node-2" {
		t.Fatalf("placement %v", got)
	}

	for _, c := range []struct {
		name string
		mut  func(s *raftfsm.ServiceSpec)
		want error
		says string
	}{
		{"the UI's host", func(s *raftfsm.ServiceSpec) { s.Hosts = []string{"mesh.example.com"} }, raftfsm.ErrInvalid, "UI host"},
		{"a missing build context", func(s *raftfsm.ServiceSpec) { s.Image, s.Build = "", "sha256:"+strings.Repeat("0", 64) }, raftfsm.ErrInvalid, "was not uploaded"},
		{"an unknown workspace id", func(s *raftfsm.ServiceSpec) { s.Workspace = "abcdef" }, raftfsm.ErrNotFound, "abcdef"},
		{"a node not in the cluster", func(s *raftfsm.ServiceSpec) { s.Nodes, s.Replicas = []string{"ghost"}, 1 }, raftfsm.ErrInvalid, "ghost"},
	} {
		sp := spec.Clone()
		sp.Workspace = ""
		c.mut(&sp)
		if _, err := Prepare(s, req(sp)); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.want, c.says)
		}
	}

	// A host another service serves is a conflict.
	s.Services["d3fa01/blog/prod/web"] = &raftfsm.Service{Key: "d3fa01/blog/prod/web", Spec: raftfsm.ServiceSpec{Hosts: []string{"shop.example.com"}}}
	sp := spec.Clone()
	sp.Workspace = ""
	if _, err := Prepare(s, req(sp)); !errors.Is(err, raftfsm.ErrConflict) || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("a taken host: %v", err)
	}

	// A secret sealed for another cluster is refused.
	foreign := spec.Clone()
	foreign.Workspace, foreign.Hosts, foreign.Secrets = "", nil, map[string]string{"DB": "x"}
	key := raftfsm.ServiceKey("d3fa01", "shop", "prod", "web")
	if err := raftfsm.SealSecrets(testSealer(t, 1), key, &foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(s, req(foreign)); !errors.Is(err, raftfsm.ErrInvalid) || !strings.Contains(err.Error(), "sealed for another cluster") {
		t.Fatalf("a foreign sealed secret: %v", err)
	}
}

func TestResolveService(t *testing.T) {
	s := raftfsm.NewState()
	s.Workspaces["d3fa01"] = &raftfsm.Workspace{ID: "d3fa01", Name: raftfsm.DefaultWorkspaceName}
	key := raftfsm.ServiceKey("d3fa01", "shop", "prod", "web")
	s.Services[key] = &raftfsm.Service{Key: key}
	if got, err := ResolveService(s, "shop/prod/web"); err != nil || got != key {
		t.Fatalf("ResolveService = %q, %v", got, err)
	}
	for _, name := range []string{"shop/prod/api", "ghost/shop/prod/web"} {
		if _, err := ResolveService(s, name); !errors.Is(err, raftfsm.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := ResolveService(s, "not a name"); !errors.Is(err, raftfsm.ErrInvalid) {
		t.Errorf("a bad name: %v", err)
	}
}
