package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// startSeed runs a seed agent with a bootstrap token on a loopback address
// of its own and returns it with a client of its API.
func startSeed(t *testing.T, token string) (*node.Agent, *agentClient) {
	t.Helper()
	cfg := node.DefaultConfig()
	ip := testIPPrefix + "240"
	cfg.NodeID, cfg.DataDir = SeedNodeID, filepath.Join(t.TempDir(), "data")
	cfg.BindIP, cfg.AdvertiseIP, cfg.PublicIP = ip, ip, ip
	cfg.Bootstrap, cfg.BootstrapToken, cfg.ClusterName = true, token, "claimtest"
	cfg.NoRuntime, cfg.Edge, cfg.Version = true, "none", "test"
	cfg.ShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	a, errc, err := node.RunAgent(ctx, cfg, node.Options{Logger: agentLogger(),
		API: func(a *node.Agent) (http.Handler, error) {
			return api.New(api.Options{Controller: a, APIKey: a.Keys().APIKey, RequireAuthAlways: true, Logger: a.Logger()})
		}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-errc
	})
	// The API on 9999 is TLS with the seed's node certificate; the test
	// trusts the seed's CA (the claim itself proves the token both ways
	// and needs no trusted channel: the real bootstrapper comes through
	// the edge).
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(a.ClusterCAPEM()) {
		t.Fatal("the seed has no CA certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
	return a, &agentClient{hc: hc, endpoints: []Endpoint{{URL: "https://" + ip + ":9999"}}}
}

func initialized(a *node.Agent) bool {
	var ok bool
	a.View(func(s *raftfsm.State) { ok = s.Settings.Initialized })
	return ok
}

func status(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// The seed accepts one claim, from a holder of its token: a wrong token is
// refused both ways (the seed's proof does not verify, the client's proof
// is 403), a stale seed nonce is 400, and once claimed every later hello or
// replayed claim is 409. Nothing but the right claim initialises the
// cluster.
func TestSeedClaimRefusesAWrongOrReusedToken(t *testing.T) {
	token, _ := bootclaim.NewToken()
	wrong, _ := bootclaim.NewToken()
	seed, c := startSeed(t, token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secrets := bootclaim.Secrets{DOToken: testDOToken, CFToken: testCFToken, AdminPassword: "correct horse battery"}

	hello := func(nonce string) bootclaim.Answer {
		t.Helper()
		var ans bootclaim.Answer
		if err := c.claim(ctx, bootclaim.Request{ClientNonce: nonce}, &ans); err != nil {
			t.Fatalf("hello: %v", err)
		}
		return ans
	}
	claimWith := func(tok, nonce string, h bootclaim.Answer) (bootclaim.Request, error) {
		sealed, err := bootclaim.Seal(tok, nonce, h.SeedNonce, bootclaim.LabelSecrets, secrets)
		if err != nil {
			t.Fatal(err)
		}
		req := bootclaim.Request{ClientNonce: nonce, SeedNonce: h.SeedNonce, Proof: bootclaim.ClientProof(tok, nonce, h.SeedNonce), Secrets: sealed}
		var ans bootclaim.Answer
		return req, c.claim(ctx, req, &ans)
	}

	// A client holding another token sees that the seed does not prove it.
	n1, _ := bootclaim.NewNonce()
	h1 := hello(n1)
	if bootclaim.Verify(bootclaim.SeedProof(wrong, n1, h1.SeedNonce, h1.CACert), h1.Proof) {
		t.Fatal("the seed's proof verifies with another token")
	}
	if !bootclaim.Verify(bootclaim.SeedProof(token, n1, h1.SeedNonce, h1.CACert), h1.Proof) {
		t.Fatal("the seed's proof does not verify with its token")
	}
	// A claim with the wrong token: 403, and the seed nonce is spent.
	if _, err := claimWith(wrong, n1, h1); status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("claim with a wrong token: %v; want 403", err)
	}
	if _, err := claimWith(token, n1, h1); status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "unknown or expired seed nonce") {
		t.Fatalf("claim on a spent seed nonce: %v; want 400", err)
	}
	// Malformed input is 400.
	var ans bootclaim.Answer
	if err := c.claim(ctx, bootclaim.Request{ClientNonce: "short"}, &ans); status(err) != http.StatusBadRequest {
		t.Fatalf("a short nonce: %v; want 400", err)
	}
	if initialized(seed) {
		t.Fatal("a refused claim initialised the cluster")
	}

	// The right claim initialises the cluster and hands back the API key.
	n2, _ := bootclaim.NewNonce()
	h2 := hello(n2)
	sealed, _ := bootclaim.Seal(token, n2, h2.SeedNonce, bootclaim.LabelSecrets, secrets)
	good := bootclaim.Request{ClientNonce: n2, SeedNonce: h2.SeedNonce, Proof: bootclaim.ClientProof(token, n2, h2.SeedNonce), Secrets: sealed}
	if err := c.claim(ctx, good, &ans); err != nil {
		t.Fatalf("the right claim: %v", err)
	}
	var res bootclaim.Result
	if err := bootclaim.Open(token, n2, h2.SeedNonce, bootclaim.LabelResult, ans.Sealed, &res); err != nil || res.APIKey != seed.Keys().APIKey {
		t.Fatalf("the claim's answer: %v (key matches: %v)", err, res.APIKey == seed.Keys().APIKey)
	}
	if strings.Contains(ans.Sealed, res.APIKey) {
		t.Fatal("the API key travels in clear")
	}
	var doToken raftfsm.Sealed
	seed.View(func(s *raftfsm.State) { doToken = s.Settings.DOToken })
	if !initialized(seed) || !strings.HasPrefix(string(doToken), "v1:") {
		t.Fatalf("after the claim: initialised %v, DigitalOcean token %q", initialized(seed), doToken)
	}

	// The token is used up: a replay and a fresh hello are 409.
	if err := c.claim(ctx, good, &ans); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("a replayed claim: %v; want 409", err)
	}
	n3, _ := bootclaim.NewNonce()
	if err := c.claim(ctx, bootclaim.Request{ClientNonce: n3}, &ans); status(err) != http.StatusConflict {
		t.Fatalf("a hello after the claim: %v; want 409", err)
	}
}

// Something that answers in the seed's place without its token (a proxy, a
// man in the middle) gets a hello and nothing else: its proof does not
// verify, so the secrets are never sent.
func TestClaimSendsNothingToWhatCannotProveTheToken(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		nonce, _ := bootclaim.NewNonce()
		fake, _ := bootclaim.NewToken()
		var req bootclaim.Request
		_ = json.Unmarshal(b, &req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(bootclaim.Answer{SeedNonce: nonce, Proof: bootclaim.SeedProof(fake, req.ClientNonce, nonce, "")})
	}))
	t.Cleanup(srv.Close)
	sd, err := OpenStateDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	token, err := sd.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	r := &run{o: Options{DOToken: testDOToken, CFToken: testCFToken}, sd: sd}
	c := &agentClient{hc: srv.Client(), endpoints: []Endpoint{{URL: srv.URL}}}
	if _, err := r.claimOnce(context.Background(), c, token, "correct horse battery"); !errors.Is(err, errNotTheSeed) {
		t.Fatalf("claimOnce = %v; want errNotTheSeed", err)
	}
	if len(bodies) != 1 || strings.Contains(bodies[0], "secrets") || strings.Contains(bodies[0], token) {
		t.Fatalf("requests sent: %q; want one hello without secrets or token", bodies)
	}
	if _, ok, _ := sd.APIKey(); ok {
		t.Fatal("an API key was kept")
	}
}
