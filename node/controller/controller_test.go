package controller

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// fakeNode records the commands the controller applies, on a state of its own.
type fakeNode struct {
	state   *raftfsm.State
	leader  bool
	applied []raftfsm.Command
	kicks   int
}

func (n *fakeNode) View(fn func(s *raftfsm.State)) { fn(n.state) }
func (n *fakeNode) IsLeader() bool                 { return n.leader }
func (n *fakeNode) Apply(_ context.Context, cmd raftfsm.Command) (any, error) {
	if !n.leader {
		return nil, control.ErrNotLeader
	}
	n.applied = append(n.applied, cmd)
	return nil, nil
}
func (n *fakeNode) Report(ctx context.Context, cmd raftfsm.Command) error {
	_, err := n.Apply(ctx, cmd)
	return err
}
func (n *fakeNode) CheckProto(context.Context, raftfsm.CommandType) error { return nil }
func (n *fakeNode) CheckHosts(context.Context, *raftfsm.DeployService, raftfsm.Role) error {
	return nil
}
func (n *fakeNode) KickLeader()      { n.kicks++ }
func (n *fakeNode) NodeID() string   { return "n1" }
func (n *fakeNode) CloudReady() bool { return false }

func sealer(t *testing.T) cipher.AEAD {
	t.Helper()
	secret, err := clusterconf.NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := clusterconf.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return keys.Sealer
}

func newTest(t *testing.T) (*Controller, *fakeNode) {
	t.Helper()
	n := &fakeNode{state: raftfsm.NewState(), leader: true}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return New(n, sealer(t), func() time.Time { return at }), n
}

// TestCommitTakesOnlyReports: Commit refuses a command that is not an
// agent report, and applies nothing.
func TestCommitTakesOnlyReports(t *testing.T) {
	c, n := newTest(t)
	_, err := c.Commit(context.Background(), &raftfsm.DeleteUser{Name: "ann"})
	if !errors.Is(err, raftfsm.ErrInvalid) || len(n.applied) != 0 {
		t.Fatalf("Commit(DeleteUser) = %v, applied %d; want ErrInvalid, nothing applied", err, len(n.applied))
	}
	if _, err := c.Commit(context.Background(), &raftfsm.RecordTokenUse{}); err != nil || len(n.applied) != 1 {
		t.Fatalf("Commit(RecordTokenUse) = %v, applied %d; want it applied", err, len(n.applied))
	}
}

// TestTokenAndRegistryAreSealedOrHashed: a token enters the log as its
// hash with the controller's time stamp, a registry password sealed.
func TestTokenAndRegistryAreSealedOrHashed(t *testing.T) {
	c, n := newTest(t)
	ctx := context.Background()
	created, err := c.CreateToken(ctx, control.TokenRequest{Name: "ci", Role: raftfsm.RoleDeployer}, "ann")
	if err != nil {
		t.Fatal(err)
	}
	cmd, ok := n.applied[0].(*raftfsm.CreateAPIToken)
	if !ok || cmd.At != c.now() || created.Token == "" || strings.Contains(string(mustJSON(t, cmd)), created.Token) || cmd.Token.Hash != raftfsm.HashAPIToken(created.Token) {
		t.Fatalf("CreateToken applied %#v; want a CreateAPIToken without the token's text", n.applied[0])
	}
	if err := c.PutRegistry(ctx, control.RegistryRequest{Registry: "ghcr.io", Username: "u", Password: "pa55word"}); err != nil {
		t.Fatal(err)
	}
	reg := n.applied[1].(*raftfsm.PutRegistry)
	if pw, err := raftfsm.Open(c.sealer, raftfsm.RegistryLabel("ghcr.io"), reg.Credential.Password); err != nil || string(pw) != "pa55word" {
		t.Fatalf("registry password opens to %q, %v", pw, err)
	}
	if err := c.PutRegistry(ctx, control.RegistryRequest{Registry: "ghcr.io"}); !errors.Is(err, raftfsm.ErrInvalid) || len(n.applied) != 2 {
		t.Fatalf("PutRegistry without a password = %v; want ErrInvalid, nothing applied", err)
	}
}

// TestWritesOnAFollower: a deploy on a follower is refused before anything
// is prepared; removing the node itself is refused.
func TestWritesOnAFollower(t *testing.T) {
	c, n := newTest(t)
	n.leader = false
	_, err := c.Deploy(context.Background(), control.DeployRequest{Spec: raftfsm.ServiceSpec{Project: "p", Env: "e", Service: "s", Image: "nginx:1"}})
	if !errors.Is(err, control.ErrNotLeader) {
		t.Fatalf("Deploy on a follower = %v; want ErrNotLeader", err)
	}
	n.leader = true
	n.state.Nodes["n1"] = &raftfsm.Node{ID: "n1", Status: raftfsm.NodeActive}
	n.state.Nodes["n2"] = &raftfsm.Node{ID: "n2", Status: raftfsm.NodeActive}
	if err := c.RemoveNode(context.Background(), "n1"); !errors.Is(err, raftfsm.ErrConflict) || len(n.applied) != 0 {
		t.Fatalf("RemoveNode(self) = %v; want ErrConflict, nothing applied", err)
	}
	if err := c.RemoveNode(context.Background(), "n2"); err != nil || len(n.applied) != 1 || n.kicks != 1 {
		t.Fatalf("RemoveNode(n2) = %v, applied %d, kicks %d", err, len(n.applied), n.kicks)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
