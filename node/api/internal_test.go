package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// reportFor is an encoded instance report of node.
func reportFor(t *testing.T, node string) []byte {
	t.Helper()
	b, err := raftfsm.Encode(&raftfsm.ReportInstances{At: time.Now().UTC(), Node: node})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInternalRoutesRefuseCallersWithoutAValidNodeCertificate: the API key
// alone, a certificate from another CA, an expired one, a revoked one (also
// on a connection opened before the revocation), and a valid certificate
// speaking for another node are all refused, and nothing reaches the
// controller; a member's own certificate is taken.
func TestInternalRoutesRefuseCallersWithoutAValidNodeCertificate(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	kit := testCluster()
	before := fake.StateJSON()

	internal := 0
	for _, r := range Routes(Options{Controller: fake, APIKey: testKey}) {
		if r.access() != AccessNode {
			continue
		}
		internal++
		if !strings.HasPrefix(r.Path, "/v1/internal/") {
			t.Errorf("%s %s is internal but not under /v1/internal/", r.Method, r.Path)
		}
		resp, body := callWith(t, cli(), srv, r.Method, samplePath(r.Path), nil, "")
		if e := errorOf(t, body); resp.StatusCode != http.StatusForbidden || e.Error != control.CodeForbidden {
			t.Errorf("%s %s with the API key and no certificate: status %d, want 403; body %s", r.Method, r.Path, resp.StatusCode, body)
		}
	}
	if internal < 3 {
		t.Fatalf("only %d internal routes", internal)
	}
	// Forged forwarding headers do not lend an identity.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/internal/commands", strings.NewReader(string(reportFor(t, "node-1"))))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set(control.HeaderForwarded, "1")
	req.Header.Set(control.HeaderNode, "node-1")
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged %s: status %d, want 403", control.HeaderNode, resp.StatusCode)
	}

	refusedAtHandshakeOr403 := func(name string, client *http.Client) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/internal/commands", strings.NewReader(string(reportFor(t, "node-1"))))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d, want a refused handshake or 403", name, resp.StatusCode)
			}
		}
	}
	otherCA, _, err := pki.NewCA("api-test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stranger := signed(t, otherCA, "node-1", 0)
	refusedAtHandshakeOr403("a certificate from another CA", kit.agentClient(stranger))

	expired := signedAt(t, kit.ca, "node-1", time.Now().Add(-3*time.Hour), time.Hour)
	refusedAtHandshakeOr403("an expired certificate", kit.agentClient(expired))

	// Revoked while its connection is open: the next request is refused.
	victim := signed(t, kit.ca, "node-3", 0)
	vc := kit.agentClient(victim)
	resp, body := callWith(t, vc, srv, http.MethodGet, "/v1/internal/probe?addr=127.0.0.1:1", nil, "")
	if resp.StatusCode == http.StatusForbidden {
		t.Fatalf("a valid certificate was refused: %s", body)
	}
	kit.revoke(victim.Serial())
	resp, body = callWith(t, vc, srv, http.MethodPost, "/v1/internal/commands", reportFor(t, "node-3"), "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "revoked") {
		t.Fatalf("a revoked certificate on an open connection: status %d, body %s", resp.StatusCode, body)
	}
	vc.CloseIdleConnections()
	refusedAtHandshakeOr403("a revoked certificate", vc)

	// A valid certificate of node-2 cannot report for node-1.
	node2 := kit.agentClient(kit.node(t, "node-2"))
	resp, body = callWith(t, node2, srv, http.MethodPost, "/v1/internal/commands", reportFor(t, "node-1"), "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "reports only for itself") {
		t.Fatalf("node-2 reporting for node-1: status %d, body %s", resp.StatusCode, body)
	}
	if fake.StateJSON() != before || fake.CallCount("Commit") != 0 {
		t.Fatalf("refused callers changed the state or reached the controller (%d commits)", fake.CallCount("Commit"))
	}

	// The member's own certificate: taken (with the key).
	resp, body = callWith(t, node2, srv, http.MethodPost, "/v1/internal/commands", reportFor(t, "node-2"), "")
	expect(t, resp, body, http.StatusOK, nil)
	// And a certificate does not replace the key.
	resp, body = callWith(t, node2, srv, http.MethodPost, "/v1/internal/commands", reportFor(t, "node-2"), "wrong-key")
	expect(t, resp, body, http.StatusUnauthorized, nil)
}

// signedAt is signed with a given signing time.
func signedAt(t *testing.T, ca *pki.CA, nodeID string, at time.Time, validity time.Duration) *pki.Credentials {
	t.Helper()
	id := pki.Identity{NodeID: nodeID, IPs: nil}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, at, validity)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeEnroller records the enrollment calls.
type fakeEnroller struct {
	mu      sync.Mutex
	joins   []control.JoinRequest
	remotes []string
	renewed []string
	refuse  error
}

func (e *fakeEnroller) Join(_ context.Context, req control.JoinRequest, remoteIP string) (control.JoinAnswer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != nil {
		return control.JoinAnswer{}, e.refuse
	}
	e.joins, e.remotes = append(e.joins, req), append(e.remotes, remoteIP)
	return control.JoinAnswer{Certificate: "cert of " + req.NodeID}, nil
}

func (e *fakeEnroller) RenewCertificate(_ context.Context, nodeID string, _ []byte) (control.CertificateAnswer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.renewed = append(e.renewed, nodeID)
	return control.CertificateAnswer{Certificate: "cert of " + nodeID}, nil
}

func (e *fakeEnroller) CreateJoinToken(_ context.Context, req control.JoinTokenRequest) (control.JoinTokenInfo, error) {
	return control.JoinTokenInfo{Token: "dmj_x", Node: req.Node}, nil
}

// TestJoinGoesToTheLeaderWithoutAKey: a node with only a join token reaches
// the leader's enroller through a follower, which passes on the address
// the request came from; bad requests are refused before it; a refused
// token is a 403 that is not retryable.
func TestJoinGoesToTheLeaderWithoutAKey(t *testing.T) {
	leaderEnr, followerEnr := &fakeEnroller{}, &fakeEnroller{}
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	leaderSrv := newTestServer(t, leader, func(o *Options) { o.Enroller = leaderEnr })
	follower.SetLeader(false, "node-1", hostPort(leaderSrv))
	followerSrv := newTestServer(t, follower, func(o *Options) { o.Enroller = followerEnr })

	good := control.JoinRequest{Token: "dmj_token", NodeID: "node-7", IP: "10.0.0.7", CSR: "-----BEGIN CERTIFICATE REQUEST-----"}
	resp, body := callWith(t, cli(), followerSrv, http.MethodPost, "/v1/join", good, "-")
	var ans control.JoinAnswer
	expect(t, resp, body, http.StatusOK, &ans)
	if ans.Certificate != "cert of node-7" || len(leaderEnr.joins) != 1 || len(followerEnr.joins) != 0 {
		t.Fatalf("answer %+v; leader saw %d joins, follower %d", ans, len(leaderEnr.joins), len(followerEnr.joins))
	}
	if leaderEnr.remotes[0] != "127.0.0.1" {
		t.Fatalf("the leader saw the join come from %q, want the caller's 127.0.0.1", leaderEnr.remotes[0])
	}

	for _, bad := range []control.JoinRequest{
		{NodeID: "node-7", IP: "10.0.0.7", CSR: "x"},
		{Token: "t", NodeID: "Node 7", IP: "10.0.0.7", CSR: "x"},
		{Token: "t", NodeID: "node-7", IP: "somewhere", CSR: "x"},
		{Token: "t", NodeID: "node-7", IP: "10.0.0.7"},
	} {
		resp, body := callWith(t, cli(), followerSrv, http.MethodPost, "/v1/join", bad, "-")
		expect(t, resp, body, http.StatusBadRequest, nil)
	}
	leaderEnr.refuse = fmt.Errorf("%w: %w", control.ErrForbidden, errors.New("join token already used"))
	resp, body = callWith(t, cli(), followerSrv, http.MethodPost, "/v1/join", good, "-")
	expect(t, resp, body, http.StatusForbidden, nil)
	if e := errorOf(t, body); control.Retryable(e.Error) || !strings.Contains(e.Message, "already used") {
		t.Fatalf("refusal %+v", e)
	}
	if len(leaderEnr.joins) != 1 {
		t.Fatalf("bad joins reached the enroller: %d", len(leaderEnr.joins))
	}
}

// TestRenewalIsForTheCallersOwnCertificate: the node renewing is the one
// its certificate names, also through a follower; without one, refused.
func TestRenewalIsForTheCallersOwnCertificate(t *testing.T) {
	enr := &fakeEnroller{}
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	leaderSrv := newTestServer(t, leader, func(o *Options) { o.Enroller = enr })
	follower.SetLeader(false, "node-1", hostPort(leaderSrv))
	followerSrv := newTestServer(t, follower, nil)
	kit := testCluster()

	node3 := kit.agentClient(kit.node(t, "node-3"))
	resp, body := callWith(t, node3, followerSrv, http.MethodPost, "/v1/internal/certificate", control.CertificateRequest{CSR: "csr"}, "")
	var ans control.CertificateAnswer
	expect(t, resp, body, http.StatusOK, &ans)
	if len(enr.renewed) != 1 || enr.renewed[0] != "node-3" {
		t.Fatalf("renewed %v, want node-3 (the caller, not the forwarding follower)", enr.renewed)
	}
	resp, body = callWith(t, cli(), leaderSrv, http.MethodPost, "/v1/internal/certificate", control.CertificateRequest{CSR: "csr"}, "")
	expect(t, resp, body, http.StatusForbidden, nil)
}
