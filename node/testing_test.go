package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api"
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
	secret ClusterSecret
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
	cfg.ContainerSuffix = fmt.Sprintf(".t%d-%s", os.Getpid(), cfg.NodeID)
	cfg.Version = "test"
	cfg.Region = "nyc3"
	return cfg
}

// startCluster starts n agents: node-1 bootstraps, the others join it.
func startCluster(t testing.TB, n int, mut func(i int, c *Config)) *testCluster {
	t.Helper()
	secret, err := NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, secret: secret}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		cfg := testConfig(t, dir, i)
		cfg.ClusterSecret = secret.String()
		cfg.AdminPassword = "correct horse battery"
		if i == 1 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{c.nodes[0].cfg.addr(c.nodes[0].cfg.GossipPort)}
		}
		if mut != nil {
			mut(i, &cfg)
		}
		c.start(&testNode{cfg: cfg})
	}
	t.Cleanup(c.stopAll)
	leader := c.leader()
	c.waitState(leader, 20*time.Second, "every node registered", func(s *raftfsm.State) bool {
		return s.Settings.Initialized && len(s.Nodes) == n
	})
	return c
}

func testOptions(t testing.TB) Options {
	return Options{
		Logger: testLogger(t),
		API: func(a *Agent) (http.Handler, error) {
			return a.Metrics().API(api.Options{Controller: a, APIKey: a.Keys().APIKey, RequireAuthAlways: true, Logger: a.Logger()})
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

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, timeout, what, cond)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
