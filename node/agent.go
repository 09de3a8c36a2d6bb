package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/controller"
	"github.com/dropmesh/dropmesh/node/discovery"
	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/node/health"
	"github.com/dropmesh/dropmesh/node/httpserve"
	"github.com/dropmesh/dropmesh/node/leader"
	cloudduty "github.com/dropmesh/dropmesh/node/leader/cloud"
	"github.com/dropmesh/dropmesh/node/logring"
	"github.com/dropmesh/dropmesh/node/metrics"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Agent is one dropmesh node: it joins the gossip mesh and the raft cluster,
// serves the API and the UI, converges its own Docker engine to the state,
// checks its containers, and runs the leader's duties while it leads.
type Agent struct {
	// Controller implements the API's writes (node/controller).
	*controller.Controller

	cfg    Config
	logger *slog.Logger
	ring   *logring.Ring
	keys   clusterconf.Keys

	fsm   *raftfsm.FSM
	store *raftfsm.Store
	mesh  *mesh.Mesh

	rt *runtime.Runtime
	// contexts holds the uploaded build contexts (quota, one at a time).
	contexts *runtime.ContextStore
	edge     edge.Edge
	checker  *health.Checker
	peers    *peerClient
	images   *imageService
	metrics  *metrics.Metrics
	// undecodable carries the entries this replica could not decode to
	// runUndecodableEvents (kits_wiring.go).
	undecodable chan raftfsm.Event

	// discovery lets containers find services by name (nil when off).
	discovery *discovery.Manager
	// secret is the cluster secret (a joining node gets it from the leader).
	secret clusterconf.ClusterSecret
	// creds are this node's key and certificate (DATA_DIR/tls); verifier
	// checks every peer's against the CA and the replicated revocations.
	creds    *pki.Credentials
	verifier *pki.Verifier
	// peerHTTP is the mutual-TLS client of every call to another agent.
	peerHTTP *http.Client

	// handlers mounted by main (the API and the UI are other packages that
	// take the agent as their Controller).
	apiHandler http.Handler
	uiHandler  http.Handler

	// wake holds each leader duty's own wake-up channel (kickLeader).
	wake      *leader.Wakeups
	reconKick chan struct{}
	// cloudShared is the leader's cloud work that outlives a round (cloud.go).
	cloudShared cloudShared
	// claims are the bootstrap claims a seed has begun (bootstrapclaim.go).
	claims claimState

	mu        sync.Mutex
	listeners []net.Listener
	servers   []*http.Server
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	ready     chan struct{}
	readyOnce sync.Once
	instances *instanceTable
	crons     *cronRunner

	// gossipKeyIDs are the installed gossip keys' ids, comma-separated,
	// the primary first (advertised in meta; guarded by mu).
	gossipKeyIDs string

	edgeMu      sync.Mutex
	edgeLast    edge.Config
	edgeApplied bool
	originCerts originCertCache
	issuedCerts issuedCertCache

	// crashed skips the graceful part of stop (tests: a node that dies).
	crashed bool
}

// Options are what the caller wires into an agent besides its config.
type Options struct {
	Logger *slog.Logger
	Ring   *logring.Ring
	// API and UI build the HTTP handlers served on the API and UI ports; they
	// receive the agent (a control.Controller) and its derived keys.
	API func(a *Agent) (http.Handler, error)
	UI  func(a *Agent) (http.Handler, error)
}

// New prepares an agent: it loads or makes the cluster secret and derives
// the keys, and loads this node's certificate (the seed makes the cluster CA
// and its own; a new node must have enrolled first, see Enroll). Run
// starts it.
func New(cfg Config, opts Options) (*Agent, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	secret, err := loadSecret(&cfg)
	if err != nil {
		return nil, err
	}
	keys, err := clusterconf.DeriveKeys(secret)
	if err != nil {
		return nil, err
	}
	ring := opts.Ring
	if ring == nil {
		ring = logring.NewRing(2000)
	}
	a := &Agent{
		cfg: cfg, logger: logger, ring: ring, keys: keys, secret: secret,
		wake: leader.NewWakeups(), reconKick: make(chan struct{}, 1),
		ready: make(chan struct{}),
	}
	a.Controller = a.newController()
	if err := a.loadCredentials(); err != nil {
		return nil, err
	}
	a.cloudShared.intents = cloudduty.NewIntents(a, a.now, func() string { return newID("int") })
	a.contexts = runtime.NewContextStore(a.dataPath("contexts"), control.MaxBuildContextBytes, cfg.ContextQuotaBytes)
	a.peerHTTP = a.newPeerHTTPClient()
	a.peers = newPeerClient(keys.APIKey, a.peerHTTP)
	a.images = a.newImageService()
	a.metrics = metrics.New(a, cfg.NodeID)
	if opts.API != nil {
		if a.apiHandler, err = opts.API(a); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
	}
	if opts.UI != nil {
		if a.uiHandler, err = opts.UI(a); err != nil {
			return nil, fmt.Errorf("ui: %w", err)
		}
	}
	return a, nil
}

// loadSecret reads the cluster secret from the config or its file; the
// seed makes one on its first start.
func loadSecret(cfg *Config) (clusterconf.ClusterSecret, error) {
	if cfg.ClusterSecret != "" {
		s, err := clusterconf.ParseClusterSecret(cfg.ClusterSecret)
		if err != nil {
			return s, err
		}
		if _, err := os.Stat(cfg.ClusterSecretFile); errors.Is(err, os.ErrNotExist) {
			if err := clusterconf.WriteClusterSecretFile(cfg.ClusterSecretFile, s); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	s, err := clusterconf.ReadClusterSecretFile(cfg.ClusterSecretFile)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !cfg.Bootstrap {
		if errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("no cluster secret: give --cluster-secret-file (or start the seed with --bootstrap): %w", err)
		}
		return s, err
	}
	if s, err = clusterconf.NewClusterSecret(); err != nil {
		return s, err
	}
	return s, clusterconf.WriteClusterSecretFile(cfg.ClusterSecretFile, s)
}

// Keys returns the keys derived from the cluster secret (for the API and UI).
func (a *Agent) Keys() clusterconf.Keys { return a.keys }

// Config returns the agent's completed config.
func (a *Agent) Config() Config { return a.cfg }

// Logger returns the agent's logger.
func (a *Agent) Logger() *slog.Logger { return a.logger }

// Ready is closed once the agent serves its API and knows a leader.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// APIAddr is the API's address as peers reach it.
func (a *Agent) APIAddr() string { return a.cfg.addr(a.cfg.APIPort) }

// Metrics are this agent's Prometheus metrics; main serves them at
// GET /metrics on the API.
func (a *Agent) Metrics() *metrics.Metrics { return a.metrics }

// RaftStats is raft's own statistics for the metrics; nil before raft runs.
func (a *Agent) RaftStats() map[string]string {
	if a.store == nil {
		return nil
	}
	return a.store.Stats()
}

// Members are the gossip members as this node sees them; nil before the
// mesh runs.
func (a *Agent) Members() []mesh.Member {
	if m := a.gossip(); m != nil {
		return m.Members()
	}
	return nil
}

// GossipHealthScore is memberlist's awareness score (0 is healthy).
func (a *Agent) GossipHealthScore() int {
	if m := a.gossip(); m != nil {
		return m.HealthScore()
	}
	return 0
}

// gossip is the mesh once start has made it.
func (a *Agent) gossip() *mesh.Mesh {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mesh
}

// Run starts everything and blocks until ctx ends, then shuts down
// gracefully: leadership is handed over and the gossip left.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.cancel = cancel
	a.mu.Unlock()
	defer cancel()
	if err := a.start(ctx); err != nil {
		a.stop()
		return err
	}
	a.logger.Info("agent started", "api", a.APIAddr(), "raft", a.store.Addr(), "gossip", a.cfg.addr(a.cfg.GossipPort),
		"version", a.cfg.Version, "bootstrap", a.cfg.Bootstrap)
	<-ctx.Done()
	a.stop()
	return nil
}

// Stop ends Run.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
}

func (a *Agent) start(ctx context.Context) error {
	cfg := a.cfg
	a.fsm = raftfsm.NewFSM(a.logger)
	a.undecodable = make(chan raftfsm.Event, undecodableBacklog)
	a.fsm.OnUndecodable(a.reportUndecodable)
	sc := raftfsm.DefaultStoreConfig()
	sc.NodeID, sc.Dir, sc.Logger = cfg.NodeID, filepath.Join(cfg.DataDir, "raft"), a.logger
	sc.BindAddr, sc.AdvertiseAddr = cfg.bind(cfg.RaftPort), cfg.addr(cfg.RaftPort)
	sc.OnApply = func(_ int, took time.Duration) { a.metrics.ObserveApply(took) }
	sc.TLS = a.raftTLS()
	if cfg.storeHook != nil {
		cfg.storeHook(&sc)
	}
	store, err := raftfsm.OpenStore(sc, a.fsm)
	if err != nil {
		return err
	}
	a.store = store
	if cfg.Bootstrap {
		if _, err := store.Bootstrap(); err != nil {
			return err
		}
	}

	// Bind the ports before gossiping, so peers that learn our API address
	// can connect; serve only once every part the handlers use (the mesh,
	// the runtime) exists: a request waits in the listen queue until then.
	serveAPI, err := a.listen("api", cfg.bind(cfg.APIPort), a.apiHandler, a.serverTLS())
	if err != nil {
		return err
	}
	serveUI := func() {}
	if a.uiHandler != nil {
		// The UI port stays plain HTTP: the edge terminates TLS in front
		// of it for the UI host. The internal routes refuse it (no node
		// certificate can come without TLS).
		if serveUI, err = a.listen("ui", cfg.bind(cfg.UIPort), a.uiPortHandler(), nil); err != nil {
			return err
		}
	}

	mc := mesh.DefaultConfig()
	mc.NodeID, mc.BindAddr, mc.BindPort = cfg.NodeID, cfg.BindIP, cfg.GossipPort
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseIP, cfg.GossipPort
	gossipKeys, err := a.startGossipKeys()
	if err != nil {
		return err
	}
	ids := make([]string, len(gossipKeys))
	for i, k := range gossipKeys {
		ids[i] = mesh.KeyID(k)
	}
	a.setGossipKeyIDs(ids)
	mc.ClusterName, mc.Keys, mc.Logger = cfg.ClusterName, gossipKeys, a.logger
	mc.Meta = a.meta()
	mc.OnProbeRTT = func(_ string, rtt time.Duration) { a.metrics.ObserveProbeRTT(rtt) }
	m, err := mesh.New(mc)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	a.mu.Lock()
	a.mesh = m
	a.mu.Unlock()
	if len(cfg.Join) > 0 {
		a.goRun(ctx, "join", func(ctx context.Context) {
			n, err := m.Join(ctx, cfg.Join)
			if err != nil {
				a.logger.Error("join failed", "addrs", cfg.Join, "err", err)
				return
			}
			a.logger.Info("joined the mesh", "contacted", n)
		})
	}

	if !cfg.NoRuntime {
		if err := a.startRuntime(ctx); err != nil {
			return err
		}
	}
	serveAPI()
	serveUI()
	a.goRun(ctx, "gossip-keys", a.runGossipKeys)
	a.goRun(ctx, "renew-certificate", a.runRenewer)
	a.goRun(ctx, "rejoin", a.rejoinLoop)
	a.goRun(ctx, "leader-loop", a.leaderLoop)
	a.goRun(ctx, "undecodable-events", a.runUndecodableEvents)
	a.goRun(ctx, "ready", a.waitReady)
	return nil
}

// meta is what this node tells the mesh about itself.
func (a *Agent) meta() mesh.NodeMeta {
	c := a.cfg
	m := mesh.NodeMeta{ID: c.NodeID, DropletID: c.DropletID, Region: c.Region, PublicIP: c.PublicIP, PrivateIP: c.AdvertiseIP,
		API: c.addr(c.APIPort), Raft: c.addr(c.RaftPort), Version: c.Version, Proto: raftfsm.Protocol}
	if a.uiHandler != nil {
		m.UI = c.addr(c.UIPort)
	}
	a.mu.Lock()
	m.Keys = a.gossipKeyIDs
	a.mu.Unlock()
	if c.Edge != "none" && !c.NoRuntime {
		m.Edge = net.JoinHostPort(c.PublicIP, fmt.Sprint(c.EdgePort))
	}
	return m
}

// uiPortHandler serves the UI, and also the API's /ping and /v1/ routes:
// the edge routes the cluster's UI host to this port, so a CLI outside the
// VPC reaches the API (key required, as always) at https://mesh.DOMAIN,
// while 9999 stays closed to the internet.
func (a *Agent) uiPortHandler() http.Handler {
	mux := http.NewServeMux()
	if a.apiHandler != nil {
		mux.Handle("/v1/", a.apiHandler)
		mux.Handle("/ping", a.apiHandler)
	}
	mux.Handle("/", a.uiHandler)
	return mux
}

// listen binds addr now and returns serve, which serves h on it until the
// agent stops, over TLS when tlsCfg is not nil. Connections that arrive
// before serve wait in the listen queue.
func (a *Agent) listen(name, addr string, h http.Handler, tlsCfg *tls.Config) (serve func(), err error) {
	if h == nil {
		h = http.NotFoundHandler()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
	}
	// Read, write and idle timeouts that the API's and the UI's long
	// streams survive (package httpserve).
	srv := httpserve.Server(h, httpserve.DefaultTimeouts(), slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug))
	a.mu.Lock()
	a.listeners = append(a.listeners, l)
	a.servers = append(a.servers, srv)
	a.mu.Unlock()
	return func() {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.logger.Error("server stopped", "server", name, "err", err)
			}
		}()
	}, nil
}

// goRun runs fn in a goroutine owned by the agent.
func (a *Agent) goRun(ctx context.Context, name string, fn func(ctx context.Context)) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				a.logger.Error("goroutine panicked", "task", name, "panic", p)
			}
		}()
		fn(ctx)
	}()
}

// waitReady closes Ready once the API serves and a leader is known.
func (a *Agent) waitReady(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := a.store.Leader(); id != "" {
			a.readyOnce.Do(func() { close(a.ready) })
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// crash stops the agent the way a power loss would: no leadership
// transfer, no goodbye to the gossip. Tests use it.
func (a *Agent) crash() {
	a.mu.Lock()
	a.crashed = true
	a.mu.Unlock()
	a.Stop()
}

// stop shuts the agent down gracefully.
func (a *Agent) stop() {
	timeout := a.cfg.ShutdownTimeout
	a.mu.Lock()
	graceful := !a.crashed
	a.mu.Unlock()
	if graceful && a.store != nil && a.store.IsLeader() {
		if err := a.store.TransferLeadership(); err != nil {
			a.logger.Warn("leadership transfer failed", "err", err)
		}
	}
	if graceful && a.mesh != nil {
		if err := a.mesh.Leave(min(timeout, 3*time.Second)); err != nil {
			a.logger.Warn("leave gossip", "err", err)
		}
	}
	a.mu.Lock()
	servers, listeners := a.servers, a.listeners
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, 5*time.Second))
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(ctx)
	}
	for _, l := range listeners {
		_ = l.Close() // those of a start that failed before serving
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.crons != nil {
		a.crons.stopAll() // before the Docker client closes
	}
	if a.mesh != nil {
		_ = a.mesh.Shutdown()
	}
	if a.edge != nil {
		_ = a.edge.Close(ctx)
	}
	if a.rt != nil {
		_ = a.rt.Close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.logger.Warn("close raft", "err", err)
		}
	}
	a.logger.Info("agent stopped")
}

// kickLeader wakes every leader duty (a deploy, a settings change), each
// on its own channel.
func (a *Agent) kickLeader() { a.wake.Kick() }

// kickReconciler wakes the reconciler.
func (a *Agent) kickReconciler() {
	select {
	case a.reconKick <- struct{}{}:
	default:
	}
}

// Leader returns the leader's id and API address.
func (a *Agent) Leader() (id, api string) {
	id, _ = a.store.Leader()
	if id == "" {
		return "", ""
	}
	if id == a.cfg.NodeID {
		return id, a.APIAddr()
	}
	if m := a.gossip(); m != nil {
		if mem, ok := m.Member(id); ok && mem.Meta.API != "" {
			return id, mem.Meta.API
		}
	}
	var addr string
	a.fsm.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes[id]; ok {
			addr = n.API
		}
	})
	return id, addr
}

// apply commits a command on the leader. On a follower it fails with
// ErrNotLeader; agents' own reports go through report instead.
func (a *Agent) apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	if !a.store.IsLeader() {
		return nil, raftfsm.ErrNotLeader
	}
	if err := a.checkCommandProto(ctx, cmd); err != nil {
		return nil, err
	}
	// The caller's deadline is absolute: wrapped, the command is refused by
	// every replica if the leader appends it only after the deadline (a
	// frozen leader, a long queue). Old servers do not know the wrapper:
	// then only the leader's own check before raft holds.
	if dl, ok := ctx.Deadline(); ok && cmd.Type() != raftfsm.CmdDeadlined && a.checkProto(ctx, raftfsm.CmdDeadlined) == nil {
		wrapped, err := raftfsm.WithDeadline(cmd, dl)
		if err != nil {
			return nil, err
		}
		cmd = wrapped
	}
	start := time.Now()
	res, err := a.store.Apply(ctx, cmd)
	if err == nil {
		a.metrics.ObserveCommit(time.Since(start))
	}
	return res, err
}

// checkProto refuses a command type some raft server may not understand:
// during a rolling upgrade the leader emits a new type only once every
// server advertises, in its gossip metadata, a protocol that includes it
// (STYLE.md, point 3). Non-voters count too: they apply the same log.
func (a *Agent) checkProto(ctx context.Context, t raftfsm.CommandType) error {
	m := a.gossip()
	if m == nil {
		return nil
	}
	servers, err := a.store.Servers(ctx)
	if err != nil {
		return fmt.Errorf("check the servers' protocol for %s: %w", t, err)
	}
	return protoConflict(t, servers, m.Member)
}

// protoFloor is the newest command type every agent that can be a raft
// server understands. It was the first agent's newest type (the first to
// advertise its protocol); it is now that of the first release whose raft
// runs over mutual TLS only, the release that brought the cluster PKI's
// commands: an older agent cannot finish a raft handshake with this one, so
// every raft server, seen or not, understands the types up to it. (Without
// that, a dead voter would hold up the join token of its own replacement.)
// Command types are append only; it moves only with such a break.
const protoFloor = raftfsm.CmdDeleteJoinToken

// protoConflict returns an error wrapping raftfsm.ErrConflict when some
// server may not understand t. A server counts with the protocol it
// advertises while it is alive or suspect; one that is dead or left, that
// the mesh does not know, or that advertises no protocol may come back
// running any release, so it counts with protoFloor: it does not know the
// types added since.
func protoConflict(t raftfsm.CommandType, servers []raftfsm.Server, member func(id string) (mesh.Member, bool)) error {
	return protoConflictAt(raftfsm.TypeProtocol(t), t.String(), servers, member)
}

// protoConflictAt is protoConflict for what needs protocol need (a command
// type, or a command with fields newer than its type: kits_wiring.go).
func protoConflictAt(need int, what string, servers []raftfsm.Server, member func(id string) (mesh.Member, bool)) error {
	for _, s := range servers {
		role := "voter"
		if !s.Voter {
			role = "non-voter"
		}
		m, ok := member(s.ID)
		switch {
		case ok && (m.Status == mesh.StatusAlive || m.Status == mesh.StatusSuspect) && m.Meta.Proto > 0:
			if m.Meta.Proto < need {
				return fmt.Errorf("%w: %w: %s %s (version %s, protocol %d) does not understand %s yet (it needs protocol %d); upgrade it first",
					raftfsm.ErrConflict, raftfsm.ErrProtocol, role, s.ID, m.Meta.Version, m.Meta.Proto, what, need)
			}
		case need > int(protoFloor):
			why := "is not in the gossip membership"
			if ok {
				why = "is " + m.Status.String()
				if m.Meta.Proto <= 0 {
					why = "advertises no protocol"
				}
			}
			return fmt.Errorf("%w: %w: %s %s %s, so it may not understand %s; retry once it is back or removed",
				raftfsm.ErrConflict, raftfsm.ErrProtocol, role, s.ID, why, what)
		}
	}
	return nil
}

// report sends an agent report to the leader (locally when leading).
func (a *Agent) report(ctx context.Context, cmd raftfsm.Command) error {
	if a.store.IsLeader() {
		_, err := a.Commit(ctx, cmd)
		return err
	}
	_, api := a.Leader()
	if api == "" {
		return control.ErrNoLeader
	}
	return a.peers.commit(ctx, api, cmd)
}
