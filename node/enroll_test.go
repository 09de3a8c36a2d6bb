package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// enrollWith tries to enroll cfg with token through api and reports the error.
func enrollWith(t *testing.T, cfg Config, api, token, fingerprint string) error {
	t.Helper()
	cfg.JoinToken, cfg.CAFingerprint, cfg.JoinAPI = token, fingerprint, []string{api}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Enroll(ctx, cfg, testLogger(t))
}

// TestJoinTokenWorksOnce: a fresh token lets one node in; the same token
// again, an expired one, an unknown one, one made for another node and a
// member's name are refused with a clear error and an event, and leave the
// refused node without credentials or a place in the state. A node pinning
// another CA never sends its token.
func TestJoinTokenWorksOnce(t *testing.T) {
	c := startCluster(t, 1, nil)
	leader := c.leader()
	ctx := context.Background()
	dir := t.TempDir()

	first := &testNode{cfg: testConfig(t, dir, 2)}
	c.joinConfig(&first.cfg)
	c.start(first)
	waitFor(t, 20*time.Second, "node-2 alive everywhere", func() bool { return c.allSee("node-2", mesh.StatusAlive) })
	if _, err := pki.LoadCredentials(filepath.Join(first.cfg.DataDir, TLSDir)); err != nil {
		t.Fatalf("the joined node has no credentials: %v", err)
	}
	used := first.cfg.JoinToken
	fingerprint := leader.agent.CAFingerprint()

	token := func(req control.JoinTokenRequest) string {
		t.Helper()
		info, err := leader.agent.CreateJoinToken(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if info.CAFingerprint != fingerprint || info.ExpiresAt.IsZero() {
			t.Fatalf("token info %+v", info)
		}
		return info.Token
	}
	expired := token(control.JoinTokenRequest{TTL: "1ms"})
	waitFor(t, 5*time.Second, "the token's expiry to pass", func() bool {
		var exp time.Time
		leader.agent.View(func(s *raftfsm.State) {
			if jt := s.PKI.JoinTokens[raftfsm.HashJoinToken(expired)]; jt != nil {
				exp = jt.ExpiresAt
			}
		})
		return !exp.IsZero() && time.Now().After(exp)
	})
	forNode5 := token(control.JoinTokenRequest{Node: "node-5"})
	spare := token(control.JoinTokenRequest{})

	for _, tc := range []struct {
		name, node, token, why string
	}{
		{"a used token", "node-3", used, "already used"},
		{"an expired token", "node-3", expired, "expired"},
		{"an unknown token", "node-3", "dmj_" + strings.Repeat("A", 43), "unknown"},
		{"another node's token", "node-6", forNode5, "another node"},
		{"a member's name", "node-2", spare, "already a member"},
	} {
		cfg := testConfig(t, t.TempDir(), 3)
		cfg.NodeID = tc.node
		err := enrollWith(t, cfg, leader.agent.APIAddr(), tc.token, fingerprint)
		if !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.why)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, TLSDir)); !os.IsNotExist(err) {
			t.Errorf("%s: the refused node has a credentials dir (%v)", tc.name, err)
		}
	}
	var refusals int
	var unknownNode bool
	leader.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Since(0, 0) {
			if e.Kind == eventJoinRefused {
				refusals++
			}
		}
		_, unknownNode = s.Nodes["node-3"]
	})
	if refusals != 5 || unknownNode {
		t.Fatalf("%d refusal events (want 5), node-3 in the state: %v", refusals, unknownNode)
	}

	// Another CA pinned: the node stops before its token leaves.
	cfg := testConfig(t, t.TempDir(), 3)
	err := enrollWith(t, cfg, leader.agent.APIAddr(), spare, "sha256:"+strings.Repeat("0", 64))
	if err == nil || !errors.Is(err, pki.ErrUntrusted) {
		t.Fatalf("a join pinning another CA: %v", err)
	}
	var spent bool
	leader.agent.View(func(s *raftfsm.State) { spent = !s.PKI.JoinTokens[raftfsm.HashJoinToken(spare)].UsedAt.IsZero() })
	if spent {
		t.Fatal("the token was spent on a member of no pinned CA")
	}
	// The spare token still works, once.
	if err := enrollWith(t, cfg, leader.agent.APIAddr(), spare, fingerprint); err != nil {
		t.Fatalf("the spare token: %v", err)
	}
}

// TestRemovedNodeIsRevoked: `nodes remove` ends with the node's
// certificates revoked; from then on its key opens no connection to any
// agent's API, even with the API key.
func TestRemovedNodeIsRevoked(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	var victim *testNode
	for _, n := range c.nodes {
		if n != leader {
			victim = n
		}
	}
	creds, err := pki.LoadCredentials(filepath.Join(victim.cfg.DataDir, TLSDir))
	if err != nil {
		t.Fatal(err)
	}
	key := leader.agent.Keys().APIKey
	stolen := func(n *testNode) *apiclient.Client {
		cl, err := apiclient.New(apiclient.Config{Addrs: []string{n.agent.APIAddr()}, APIKey: key,
			TLS: pki.ClientConfig(creds, &pki.Verifier{Roots: creds.Pool()}, ""), RetryFor: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	if _, err := stolen(leader).Nodes(context.Background()); err != nil {
		t.Fatalf("before the removal the node's certificate works: %v", err)
	}
	if err := c.apiClient(leader).RemoveNode(context.Background(), victim.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	c.waitState(leader, 30*time.Second, victim.cfg.NodeID+" removed and revoked", func(s *raftfsm.State) bool {
		_, still := s.Nodes[victim.cfg.NodeID]
		return !still && s.PKI.IsRevoked(creds.Serial())
	})
	for _, n := range c.nodes {
		if n == victim || n.agent == nil {
			continue
		}
		c.waitState(n, 10*time.Second, "the revocation on "+n.cfg.NodeID, func(s *raftfsm.State) bool { return s.PKI.IsRevoked(creds.Serial()) })
		if _, err := stolen(n).Nodes(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s took the removed node's certificate: %v", n.cfg.NodeID, err)
		}
	}
}

// TestCertificatesRenewWithoutInterruption: with a validity of seconds,
// every node renews its certificate twice, and raft and the API keep
// working past the moment the first certificates expired.
func TestCertificatesRenewWithoutInterruption(t *testing.T) {
	const validity = 4 * time.Second
	c := startCluster(t, 3, func(_ int, cfg *Config) { cfg.CertValidity = validity })
	leader := c.leader()
	var firstExpiry time.Time
	for _, n := range c.nodes {
		if exp := n.agent.creds.NotAfter(); exp.After(firstExpiry) {
			firstExpiry = exp
		}
	}
	serials := map[string]map[string]bool{}
	for _, n := range c.nodes {
		serials[n.cfg.NodeID] = map[string]bool{}
	}
	cl := c.apiClient(leader)
	waitFor(t, 30*time.Second, "two renewals on every node, past the first certificates' expiry", func() bool {
		done := time.Now().After(firstExpiry)
		for _, n := range c.nodes {
			serials[n.cfg.NodeID][n.agent.creds.Serial()] = true
			done = done && len(serials[n.cfg.NodeID]) >= 3
		}
		return done
	})
	// Raft commits, through every node's API, and every node is still a voter.
	for _, n := range c.nodes {
		if _, err := c.apiClient(n).CreateWorkspace(context.Background(), "after-renewal-"+n.cfg.NodeID); err != nil {
			t.Fatalf("a write through %s after the renewals: %v", n.cfg.NodeID, err)
		}
	}
	if _, err := cl.Cluster(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3") {
		t.Fatal("a node lost its raft place across the renewals")
	}
	for _, n := range c.nodes {
		saved, err := pki.LoadCredentials(filepath.Join(n.cfg.DataDir, TLSDir))
		if err != nil || saved.NotAfter().Before(firstExpiry) {
			t.Fatalf("%s's saved credentials: %v (expires %v)", n.cfg.NodeID, err, saved)
		}
	}
}
