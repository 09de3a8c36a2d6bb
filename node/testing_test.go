package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// testIPPrefix keeps this package's agents on their own loopback addresses,
// away from other packages' tests and other test processes (a benchmark
// run beside the tests) running at the same time.
var testIPPrefix = fmt.Sprintf("127.0.%d.", 200+os.Getpid()%50)

// testNode is one agent of a test cluster.
type testNode struct {
	cfg    Config
	agent  *Agent
	cancel context.CancelFunc
	errc   <-chan error
}

// testCluster is a few agents in this test process, on real sockets.
type testCluster struct {
	t      testing.TB
	nodes  []*testNode
	secret clusterconf.ClusterSecret
}

// testLogger logs to the test output when DROPMESH_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DROPMESH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is the config of node i (1-based) of a test cluster.
func testConfig(t testing.TB, dir string, i int) Config {
	cfg := DefaultConfig()
	ip := fmt.Sprintf("%s%d", testIPPrefix, i+1)
	cfg.NodeID = fmt.Sprintf("node-%d", i)
	cfg.DataDir = filepath.Join(dir, cfg.NodeID)
	cfg.BindIP, cfg.AdvertiseIP, cfg.PublicIP = ip, ip, ip
	cfg.EdgePort = 18000 + i
	cfg.Edge = "proxy"
	cfg.HealthInterval = time.Second
	cfg.DrainDelay = 300 * time.Millisecond
	cfg.ReconcileInterval = 5 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.NoRuntime = true
	// Discovery (workspace networks, DNS on their gateways) is tested where
	// it is the subject; the other tests keep Docker's default bridge.
	cfg.Discovery = "off"
	cfg.ContainerSuffix = fmt.Sprintf(".t%d-%s", os.Getpid(), cfg.NodeID)
	cfg.Version = "test"
	cfg.Region = "nyc3"
	return cfg
}

// startCluster starts n agents: node-1 bootstraps, the others join it.
func startCluster(t testing.TB, n int, mut func(i int, c *Config)) *testCluster {
	t.Helper()
	secret, err := clusterconf.NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, secret: secret}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		cfg := testConfig(t, dir, i)
		cfg.AdminPassword = "correct horse battery"
		if i == 1 {
			cfg.ClusterSecret = secret.String()
			cfg.Bootstrap = true
		} else {
			c.joinConfig(&cfg)
		}
		if mut != nil {
			mut(i, &cfg)
		}
		c.start(&testNode{cfg: cfg})
		if i == 1 {
			c.waitState(c.nodes[0], 20*time.Second, "the seed to initialise the cluster", func(s *raftfsm.State) bool {
				return s.Settings.Initialized && s.PKI.CACertPEM != ""
			})
		}
	}
	t.Cleanup(c.stopAll)
	leader := c.leader()
	c.waitState(leader, 20*time.Second, "every node registered", func(s *raftfsm.State) bool {
		return s.Settings.Initialized && len(s.Nodes) == n
	})
	return c
}

// joinConfig makes cfg a node that joins the cluster as production nodes
// do: it has nothing but a one-time join token for its node id and the CA
// fingerprint, and enrolls through the leader's API.
func (c *testCluster) joinConfig(cfg *Config) {
	c.t.Helper()
	leader := c.leader()
	tok, err := leader.agent.CreateJoinToken(context.Background(), control.JoinTokenRequest{Node: cfg.NodeID, Purpose: "test"})
	if err != nil {
		c.t.Fatalf("join token for %s: %v", cfg.NodeID, err)
	}
	cfg.JoinToken, cfg.CAFingerprint = tok.Token, tok.CAFingerprint
	cfg.Join = []string{leader.cfg.addr(leader.cfg.GossipPort)}
	cfg.JoinAPI = []string{leader.agent.APIAddr()}
}

func testOptions(t testing.TB) Options {
	return Options{
		Logger: testLogger(t),
		API: func(a *Agent) (http.Handler, error) {
			return api.NewMeasured(api.Options{Controller: a, APIKey: a.Keys().APIKey, RequireAuthAlways: true, Logger: a.Logger(),
				HTTPClient: a.PeerHTTPClient(), VerifyNode: a.VerifyNode, Enroller: a, Extra: a.ImageRoutes(),
				Limits: api.Limits{TokenUseFlush: 100 * time.Millisecond}}, a.Metrics())
		},
	}
}

// start (re)starts a node and waits until it knows a leader.
func (c *testCluster) start(n *testNode) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, errc, err := RunAgent(ctx, n.cfg, testOptions(c.t))
	if err != nil {
		cancel()
		c.t.Fatalf("start %s: %v", n.cfg.NodeID, err)
	}
	n.agent, n.cancel, n.errc = a, cancel, errc
	for i, old := range c.nodes {
		if old == n {
			c.nodes[i] = n
			return
		}
	}
	c.nodes = append(c.nodes, n)
}

// stop stops a node gracefully; crash stops it without goodbyes.
func (c *testCluster) stop(n *testNode, crash bool) {
	if n.agent == nil {
		return
	}
	if crash {
		n.agent.crash()
	}
	n.cancel()
	select {
	case <-n.errc:
	case <-time.After(30 * time.Second):
		c.t.Errorf("%s did not stop", n.cfg.NodeID)
	}
	n.agent = nil
}

func (c *testCluster) stopAll() {
	for _, n := range c.nodes {
		c.stop(n, false)
	}
}

// leader waits for a leader among the running nodes.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	var found *testNode
	waitFor(c.t, 15*time.Second, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.agent != nil && n.agent.IsLeader() {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// waitState waits until cond holds on node n's replica.
func (c *testCluster) waitState(n *testNode, timeout time.Duration, what string, cond func(s *raftfsm.State) bool) {
	c.t.Helper()
	waitFor(c.t, timeout, what, func() bool {
		ok := false
		n.agent.View(func(s *raftfsm.State) { ok = cond(s) })
		return ok
	})
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// caFile writes the cluster CA's certificate to a file (what
// DROPMESH_CACERT names) and returns its path.
func (c *testCluster) caFile() string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, c.nodes[0].agent.ClusterCAPEM(), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// cliHTTP is an HTTP client that verifies the agents against the cluster CA
// and presents no certificate, as the CLI does.
func (c *testCluster) cliHTTP() *http.Client { return cliHTTPOf(c.nodes[0].agent) }

// cliHTTPOf is cliHTTP for a's cluster.
func cliHTTPOf(a *Agent) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.ClusterCAPEM())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	return &http.Client{Transport: tr}
}

// apiClient is an API client of n, as the CLI makes one.
func (c *testCluster) apiClient(n *testNode) *apiclient.Client {
	c.t.Helper()
	cl, err := apiclient.New(apiclient.Config{Addrs: []string{n.agent.APIAddr()}, APIKey: n.agent.Keys().APIKey, CACert: c.nodes[0].agent.ClusterCAPEM()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, timeout, what, cond)
}
