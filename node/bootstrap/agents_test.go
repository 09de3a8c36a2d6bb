package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/scripts"
)

// testIPPrefix keeps this package's agents on loopback addresses of their
// own, away from other packages' tests running at the same time.
const testIPPrefix = "127.0.77."

// testIPs is the fake cloud's IPAllocator: droplet n at 127.0.77.(n+1).
func testIPs(n int) (string, string) {
	ip := fmt.Sprintf("%s%d", testIPPrefix, n+1)
	return ip, ip
}

// agentBackend backs the fake cloud's droplets with agents in this test
// process, started from the droplets' user data as cloud-init and the
// dropmesh-agent unit would: the write_files land under a per-droplet
// root, agent.env becomes the agent's config. Droplets without agent.env
// (the snapshot builder) run nothing.
type agentBackend struct {
	t   testing.TB
	dir string

	mu     sync.Mutex
	agents map[int]*runningAgent
	// onStart, if set, runs before a cluster droplet's agent starts.
	onStart func(fakeapi.BackedDroplet)
}

// setOnStart sets (or, with nil, clears) the hook run before an agent starts.
func (b *agentBackend) setOnStart(f func(fakeapi.BackedDroplet)) {
	b.mu.Lock()
	b.onStart = f
	b.mu.Unlock()
}

type runningAgent struct {
	d      fakeapi.BackedDroplet
	agent  *node.Agent
	cancel context.CancelFunc
	errc   <-chan error
	env    map[string]string
}

var _ fakeapi.DropletBackend = (*agentBackend)(nil)

func newAgentBackend(t testing.TB) *agentBackend {
	b := &agentBackend{t: t, dir: t.TempDir(), agents: map[int]*runningAgent{}}
	t.Cleanup(b.stopAll)
	return b
}

// agentLogger logs to stderr when DROPMESH_TEST_LOG is set.
func agentLogger() *slog.Logger {
	if os.Getenv("DROPMESH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// config turns a droplet's agent.env into the agent's config, the way the
// agent's flags read DROPMESH_* variables, with loopback addresses.
func (b *agentBackend) config(d fakeapi.BackedDroplet, env map[string]string) (node.Config, error) {
	root := filepath.Join(b.dir, d.Name, "root")
	files, err := userDataFiles(d.UserData)
	if err != nil {
		return node.Config{}, err
	}
	for path, content := range files {
		if path == scripts.AgentEnvPath {
			continue // read below, never written to disk here
		}
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return node.Config{}, err
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return node.Config{}, err
		}
	}
	cfg := node.DefaultConfig()
	cfg.NodeID = env["DROPMESH_NODE_ID"]
	cfg.DataDir = filepath.Join(b.dir, d.Name, "data")
	cfg.BindIP, cfg.AdvertiseIP, cfg.PublicIP = d.PrivateIP, d.PrivateIP, d.PublicIP
	cfg.DropletID, cfg.Region = d.ID, env["DROPMESH_REGION"]
	cfg.ClusterName, cfg.ClusterID = env["DROPMESH_CLUSTER_NAME"], env["DROPMESH_CLUSTER_ID"]
	cfg.ClusterSecret = env["DROPMESH_CLUSTER_SECRET"]
	cfg.Bootstrap = env["DROPMESH_BOOTSTRAP"] == "true"
	cfg.BootstrapToken = env["DROPMESH_BOOTSTRAP_TOKEN"]
	if j := env["DROPMESH_JOIN"]; j != "" {
		cfg.Join = strings.Split(j, ",")
	}
	if j := env["DROPMESH_JOIN_API"]; j != "" {
		cfg.JoinAPI = strings.Split(j, ",")
	}
	cfg.JoinToken, cfg.CAFingerprint = env["DROPMESH_JOIN_TOKEN"], env["DROPMESH_CA_FINGERPRINT"]
	cfg.Init.Domain = env["DROPMESH_DOMAIN"]
	if cfg.Init.Domain != "" {
		cfg.Init.UIHost = "mesh." + cfg.Init.Domain
	}
	if n := env["DROPMESH_NODES"]; n != "" {
		if cfg.Init.DesiredNodes, err = strconv.Atoi(n); err != nil {
			return cfg, fmt.Errorf("DROPMESH_NODES=%q: %w", n, err)
		}
	}
	cfg.Init.BaseSnapshot = env["DROPMESH_BASE_SNAPSHOT"]
	cfg.Init.DropletSize = env["DROPMESH_DROPLET_SIZE"]
	cfg.Init.DOBaseURL, cfg.Init.CFBaseURL = env["DROPMESH_DO_BASE_URL"], env["DROPMESH_CF_BASE_URL"]
	cfg.InitDOToken, cfg.InitCFToken = env["DROPMESH_DO_TOKEN"], env["DROPMESH_CF_TOKEN"]
	if p := env["DROPMESH_ADMIN_PASSWORD_FILE"]; p != "" {
		cfg.AdminPasswordFile = filepath.Join(root, p)
	}
	cfg.NoRuntime, cfg.Edge = true, "none"
	cfg.HealthInterval = time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Version = "test"
	return cfg, nil
}

func (b *agentBackend) Start(ctx context.Context, d fakeapi.BackedDroplet) error {
	env, err := scripts.ParseUserData(d.UserData)
	if err != nil {
		return nil // not a cluster droplet: the snapshot builder
	}
	b.mu.Lock()
	if _, ok := b.agents[d.ID]; ok {
		b.mu.Unlock()
		return nil
	}
	hook := b.onStart
	b.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	cfg, err := b.config(d, env)
	if err != nil {
		return fmt.Errorf("droplet %s: %w", d.Name, err)
	}
	actx, cancel := context.WithCancel(context.Background())
	a, errc, err := node.RunAgent(actx, cfg, node.Options{
		Logger: agentLogger(),
		API: func(a *node.Agent) (http.Handler, error) {
			return api.New(api.Options{Controller: a, APIKey: a.Keys().APIKey, RequireAuthAlways: true, Logger: a.Logger(),
				HTTPClient: a.PeerHTTPClient(), VerifyNode: a.VerifyNode, Enroller: a})
		},
		// Any UI: the UI port then also serves /ping and /v1/, as it does
		// behind the edge for https://mesh.DOMAIN.
		UI: func(*node.Agent) (http.Handler, error) { return http.NotFoundHandler(), nil },
	})
	if err != nil {
		cancel()
		if errc != nil {
			<-errc
		}
		return fmt.Errorf("droplet %s: start agent: %w", d.Name, err)
	}
	b.mu.Lock()
	b.agents[d.ID] = &runningAgent{d: d, agent: a, cancel: cancel, errc: errc, env: env}
	b.mu.Unlock()
	return nil
}

func (b *agentBackend) Restart(ctx context.Context, id int) error {
	b.mu.Lock()
	ra := b.agents[id]
	b.mu.Unlock()
	if ra == nil {
		return nil
	}
	_ = b.Stop(ctx, id)
	return b.Start(ctx, ra.d)
}

func (b *agentBackend) Stop(_ context.Context, id int) error {
	b.mu.Lock()
	ra := b.agents[id]
	delete(b.agents, id)
	b.mu.Unlock()
	if ra != nil {
		ra.cancel()
		select {
		case <-ra.errc:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("agent of droplet %d did not stop", id)
		}
	}
	return nil
}

func (b *agentBackend) stopAll() {
	b.mu.Lock()
	ids := make([]int, 0, len(b.agents))
	for id := range b.agents {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := b.Stop(context.Background(), id); err != nil {
				b.t.Error(err)
			}
		})
	}
	wg.Wait()
}

// agent returns the running agent of the droplet called name.
func (b *agentBackend) agent(name string) *runningAgent {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ra := range b.agents {
		if ra.d.Name == name {
			return ra
		}
	}
	return nil
}
