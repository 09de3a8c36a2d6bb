package node

import (
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestTokensThroughAFollower: a token made through a follower is stored as
// a hash on every replica; through a follower it deploys-level writes
// (forwarded, checked again by the leader), is refused admin commands, its
// last use reaches the leader's state from the follower, and once revoked
// it is refused everywhere.
func TestTokensThroughAFollower(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	key := leader.agent.Keys().APIKey
	addrs := []string{follower.agent.APIAddr()}
	ca := c.caFile()

	out, code := runCLI(t, ca, addrs, key, "tokens", "create", "--role", "deployer", "--name", "ci")
	token := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if code != 0 || !strings.HasPrefix(token, raftfsm.APITokenPrefix) {
		t.Fatalf("tokens create: %d %s", code, out)
	}
	for _, n := range c.nodes {
		c.waitState(n, 5*time.Second, "the token on "+n.cfg.NodeID, func(s *raftfsm.State) bool {
			tok, ok := s.TokenByRef("ci")
			return ok && tok.Role == raftfsm.RoleDeployer && tok.Matches(token)
		})
	}

	if out, code := runCLI(t, ca, addrs, token, "workspaces", "create", "acme"); code != 0 {
		t.Fatalf("a deployer token's write through a follower: %d %s", code, out)
	}
	c.waitState(leader, 5*time.Second, "the workspace on the leader", func(s *raftfsm.State) bool { return s.WorkspaceByName("acme") != nil })
	if out, code := runCLI(t, ca, addrs, token, "users", "add", "eve", "--role", "admin"); code == 0 || !strings.Contains(out, "needs the role admin") {
		t.Fatalf("a deployer token adding an admin: %d %s", code, out)
	}
	c.waitState(leader, 10*time.Second, "the token's last use, sent by the follower", func(s *raftfsm.State) bool {
		tok, ok := s.TokenByRef("ci")
		return ok && !tok.LastUsedAt.IsZero()
	})
	var eve bool
	leader.agent.View(func(s *raftfsm.State) { _, eve = s.Users["eve"] })
	if eve {
		t.Fatal("the refused request added the user")
	}

	if out, code := runCLI(t, ca, addrs, key, "tokens", "revoke", "ci"); code != 0 {
		t.Fatalf("tokens revoke: %d %s", code, out)
	}
	for _, n := range c.nodes {
		c.waitState(n, 5*time.Second, "the token gone on "+n.cfg.NodeID, func(s *raftfsm.State) bool {
			_, ok := s.TokenByRef("ci")
			return !ok
		})
		if out, code := runCLI(t, ca, []string{n.agent.APIAddr()}, token, "nodes"); code == 0 {
			t.Fatalf("a revoked token on %s: %s", n.cfg.NodeID, out)
		}
	}
}
