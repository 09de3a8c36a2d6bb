package raftfsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrNotLeader is returned by writes on a node that is not the leader; the
// caller forwards to the leader (node's API does) or retries.
var ErrNotLeader = errors.New("not the raft leader")

// StoreConfig holds every setting and timing of the raft store.
type StoreConfig struct {
	// NodeID is this server's raft id (the node id).
	NodeID string
	// Dir holds raft.db (log and stable store, bolt) and snapshots/.
	Dir string
	// BindAddr is the TCP address raft listens on (port 0: any free port);
	// AdvertiseAddr is what peers dial (defaults to the listener's address).
	BindAddr, AdvertiseAddr string
	// TLS is raft's mutual-TLS transport: every connection, accepted or
	// dialled, is TLS 1.3 with a certificate naming the raft server it
	// speaks for. There is no plain TCP transport: OpenStore refuses a
	// config with neither TLS nor Transport.
	TLS *RaftTLS
	// Transport replaces the TLS transport in unit tests (raft's in-memory
	// one); with it, InMemory stores replace bolt and files.
	Transport raft.Transport
	InMemory  bool
	Logger    *slog.Logger

	// HeartbeatTimeout and ElectionTimeout decide how fast a dead leader is
	// replaced: a follower starts an election after a random wait between one
	// and two heartbeat timeouts without contact. Lower means faster failover
	// and more risk of needless elections when a node stalls (GC, busy CPU,
	// slow fsync). 350 ms gives a failover of about 0.6 s (p50) on loopback,
	// and no leader change in a 10-minute soak with both cores busy
	// (TestRaftSoak; bench/README.md has the figures).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without quorum
	// contact; it must be below HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower waits to learn a commit index
	// with no new entries; small keeps replicas' reads fresh.
	CommitTimeout time.Duration
	// MaxAppendEntries is the batch size of replication and of the apply
	// channel: larger batches raise throughput under concurrent writers.
	MaxAppendEntries int
	// SnapshotThreshold and SnapshotInterval decide when raft compacts its log;
	// TrailingLogs are kept after a snapshot so slightly lagging followers
	// catch up from the log instead of a snapshot install.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotsRetained int
	// ApplyTimeout bounds a write when the caller's context has no deadline.
	ApplyTimeout time.Duration
	// TransportTimeout bounds one raft RPC; MaxPool is connections per peer.
	TransportTimeout time.Duration
	MaxPool          int

	// AppliedPersistInterval is how often the applied index is saved in the
	// stable store (and once more on Close), so a restarted node knows how
	// far it must catch up before it serves reads. Shorter narrows what a
	// crash (no Close) can forget, at one small stable-store write each.
	AppliedPersistInterval time.Duration

	// WrapLogs, when set, wraps the raft log store; tests use it to freeze
	// a node's log writes (a stalled disk, a paused process).
	WrapLogs func(raft.LogStore) raft.LogStore

	// OnApply, when set, is told how long the FSM took to apply each batch
	// of entries on this node (metrics). It is timed around the FSM, which
	// itself never reads the clock.
	OnApply func(entries int, took time.Duration)
}

// DefaultStoreConfig returns the tuned defaults (see the field comments).
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{
		HeartbeatTimeout:   350 * time.Millisecond,
		ElectionTimeout:    350 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		MaxAppendEntries:   512,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		SnapshotsRetained:  3,
		ApplyTimeout:       10 * time.Second,
		TransportTimeout:   5 * time.Second,
		MaxPool:            3,

		AppliedPersistInterval: 200 * time.Millisecond,
	}
}

// Store runs the FSM under hashicorp/raft: it opens or bootstraps the
// cluster, applies commands on the leader and reports leadership changes.
type Store struct {
	cfg       StoreConfig
	logger    *slog.Logger
	fsm       *FSM
	raft      *raft.Raft
	transport raft.Transport
	stream    *tlsStream // nil with a test transport
	logs      raft.LogStore
	stable    raft.StableStore
	snapshots raft.SnapshotStore
	reads     readState
	closers   []io.Closer

	notifyCh  chan bool
	connEnded chan string // peers whose raft connection to us ended (leaderloss.go)
	done      chan struct{}
	wg        sync.WaitGroup

	mu            sync.Mutex
	leaderChanged chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// OpenStore opens (or creates) the raft store in cfg.Dir and starts raft. A
// fresh store has no configuration: call Bootstrap on the seed, or have the
// leader add this node.
func OpenStore(cfg StoreConfig, fsm *FSM) (*Store, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("open raft store: no node id")
	}
	if cfg.TLS == nil && cfg.Transport == nil {
		return nil, fmt.Errorf("open raft store %s: %w", cfg.NodeID, ErrNoTransportSecurity)
	}
	if cfg.AppliedPersistInterval <= 0 {
		cfg.AppliedPersistInterval = DefaultStoreConfig().AppliedPersistInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, logger: logger, fsm: fsm, notifyCh: make(chan bool, 8), connEnded: make(chan string, 1), done: make(chan struct{}), leaderChanged: make(chan struct{})}
	hlog := newHCLog(logger, "raft", hclog.Info)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = s.notifyCh
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", cfg.NodeID, err)
	}

	var (
		logs   raft.LogStore
		stable raft.StableStore
	)
	switch {
	case cfg.InMemory || cfg.Transport != nil:
		mem := raft.NewInmemStore()
		logs, stable = mem, mem
		s.snapshots = raft.NewInmemSnapshotStore()
	default:
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("open raft store: data dir %s: %w", cfg.Dir, err)
		}
		bolt, err := raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
		if err != nil {
			return nil, fmt.Errorf("open raft store: %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
		}
		s.closers = append(s.closers, bolt)
		cached, err := raft.NewLogCache(1024, bolt)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("open raft store: log cache: %w", err)
		}
		logs, stable = cached, bolt
		snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, max(cfg.SnapshotsRetained, 1), hlog)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("open raft store: snapshots in %s: %w", cfg.Dir, err)
		}
		s.snapshots = snaps
	}

	s.transport = cfg.Transport
	if s.transport == nil {
		stream, err := newTLSStream(cfg.BindAddr, cfg.AdvertiseAddr, cfg.TLS, logger.With("node", cfg.NodeID))
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("open raft store %s: %w", cfg.NodeID, err)
		}
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: cfg.MaxPool, Timeout: cfg.TransportTimeout, Logger: hlog,
		})
		s.stream, s.transport = stream, nt
		s.closers = append(s.closers, nt)
	}

	if cfg.WrapLogs != nil {
		logs = cfg.WrapLogs(logs)
	}
	s.logs = logs
	s.initReads(stable)
	var machine raft.FSM = fsm
	if cfg.OnApply != nil {
		machine = &timedFSM{FSM: fsm, observe: cfg.OnApply}
	}
	r, err := raft.NewRaft(rc, machine, logs, stable, s.snapshots, s.transport)
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("open raft store %s: %w", cfg.NodeID, err)
	}
	s.raft = r
	if s.stream != nil {
		s.stream.setConfiguration(func() raft.Configuration {
			f := r.GetConfiguration() // a copy raft keeps outside its main loop: never blocks
			if f.Error() != nil {
				return raft.Configuration{}
			}
			return f.Configuration()
		})
	}
	s.wg.Add(2)
	go s.watchLeadership()
	go s.keepApplied()
	if s.stream != nil {
		s.stream.onEnded(s.peerConnEnded)
		s.wg.Add(2)
		go s.watchRevocations()
		go s.watchLeaderLoss()
	}
	return s, nil
}

// watchLeadership drains raft's NotifyCh (raft blocks on it) and turns each
// change into a closed channel, so waiters never miss one.
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case leader := <-s.notifyCh:
			s.logger.Info("raft leadership changed", "leader", leader, "node", s.cfg.NodeID)
			if leader {
				s.tookLeadership()
			}
			s.mu.Lock()
			close(s.leaderChanged)
			s.leaderChanged = make(chan struct{})
			s.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

// watchRevocations closes the open raft connections of a peer whose
// certificate this replica has just seen revoked: the handshake checked
// the certificate, so without this a connection made before the
// revocation would live on.
func (s *Store) watchRevocations() {
	defer s.wg.Done()
	seen := uint64(0)
	for {
		changed := s.fsm.Changed()
		if n := s.fsm.Revocations(); n != seen {
			seen = n
			if closed := s.stream.disconnectWhere(s.fsm.CertRevoked); closed > 0 {
				s.logger.Info("raft connections of revoked certificates closed", "node", s.cfg.NodeID, "connections", closed)
			}
		}
		select {
		case <-changed:
		case <-s.done:
			return
		}
	}
}

// LeadershipChanged returns a channel closed at the next change of this
// node's leadership. Take it, then read IsLeader, then wait on it.
func (s *Store) LeadershipChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaderChanged
}

// Bootstrap makes this node a one-voter cluster if the store has no state yet
// (the seed). It reports whether it bootstrapped.
func (s *Store) Bootstrap() (bool, error) {
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(s.cfg.NodeID), Address: s.transport.LocalAddr(), Suffrage: raft.Voter,
	}}})
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return false, nil
		}
		return false, fmt.Errorf("bootstrap raft on %s: %w", s.cfg.NodeID, err)
	}
	return true, nil
}

// BootstrapServers makes a cluster of the given voters if the store is new;
// tests use it to start several nodes at once.
func (s *Store) BootstrapServers(servers []Server) error {
	cfg := raft.Configuration{}
	for _, sv := range servers {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(sv.ID), Address: raft.ServerAddress(sv.Address), Suffrage: raft.Voter})
	}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft on %s: %w", s.cfg.NodeID, err)
	}
	return nil
}

// Addr is the address peers reach this node's raft at.
func (s *Store) Addr() string { return string(s.transport.LocalAddr()) }

// Disconnect closes every open raft connection to or from node id and
// reports how many it closed. Certificates are checked at the handshake;
// the store closes the connections of a certificate revoked in the state by
// itself, and Disconnect is for the other cases (a node removed from the
// configuration, whose connections would otherwise stay until they fail).
func (s *Store) Disconnect(id string) int {
	if s.stream == nil {
		return 0
	}
	return s.stream.disconnect(id)
}

// FSM returns the state machine this store drives.
func (s *Store) FSM() *FSM { return s.fsm }

func (s *Store) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return s.cfg.ApplyTimeout
}

// Apply commits a command and returns what the FSM returned for it, or the
// FSM's refusal. It fails with ErrNotLeader on a follower (nothing was
// written). The caller's deadline is absolute: a command whose deadline
// has passed is not handed to raft, and when the deadline passes while raft
// works on it, or the leadership is lost meanwhile, the error wraps
// ErrOutcomeUnknown (the entry may still commit). Wrap the command with
// WithDeadline so that replicas refuse it too when it reached the log late.
func (s *Store) Apply(ctx context.Context, c Command) (any, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	if s.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply %s: not applied: %w", c.Type(), err)
	}
	f := s.raft.Apply(data, s.timeout(ctx))
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("apply %s: %w: the caller's deadline passed while raft committed it (%w)", c.Type(), ErrOutcomeUnknown, ctx.Err())
	}
	if err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			// Refused before it reached the log.
			return nil, fmt.Errorf("apply %s: %w (%v)", c.Type(), ErrNotLeader, err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("apply %s: not applied: raft's queue stayed full until the deadline: %w", c.Type(), context.DeadlineExceeded)
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
			// It reached the log: a new leader may still commit it.
			return nil, fmt.Errorf("apply %s: %w: %v", c.Type(), ErrOutcomeUnknown, err)
		}
		return nil, fmt.Errorf("apply %s: %w", c.Type(), err)
	}
	r, ok := f.Response().(*Result)
	if !ok {
		return nil, fmt.Errorf("apply %s: unexpected response %T", c.Type(), f.Response())
	}
	return r.Value, r.Err
}

// IsLeader reports whether this node is the raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the current leader's id and raft address ("" if none known).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Term returns the current raft term.
func (s *Store) Term() uint64 {
	var t uint64
	fmt.Sscan(s.raft.Stats()["term"], &t)
	return t
}

// State returns this node's raft role: Leader, Follower, Candidate or Shutdown.
func (s *Store) State() string { return s.raft.State().String() }

// Stats returns raft's own statistics, for the admin view and metrics.
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// CommitIndex is the highest index this node knows to be committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// AppliedIndex is the last index applied to the FSM on this node.
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// Barrier waits until every entry committed before it is applied here; the
// leader calls it on taking over, and consistent reads use it.
func (s *Store) Barrier(ctx context.Context) error {
	if err := s.raft.Barrier(s.timeout(ctx)).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("barrier: %w", ErrNotLeader)
		}
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// WaitForLeader blocks until some node is leader and returns its id.
func (s *Store) WaitForLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := s.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for a raft leader: %w", ctx.Err())
		}
	}
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// Servers returns the current raft configuration.
func (s *Store) Servers(ctx context.Context) ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Address: string(sv.Address), Voter: sv.Suffrage == raft.Voter})
	}
	return out, nil
}

func (s *Store) membership(what, id string, f raft.IndexFuture) error {
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return fmt.Errorf("%s %s: %w", what, id, ErrNotLeader)
		}
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	return nil
}

// AddVoter adds (or promotes) a voting member.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	return s.membership("add voter", id, s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx)))
}

// AddNonvoter adds a member that replicates but does not vote.
func (s *Store) AddNonvoter(ctx context.Context, id, addr string) error {
	return s.membership("add nonvoter", id, s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx)))
}

// DemoteVoter turns a voter into a non-voter.
func (s *Store) DemoteVoter(ctx context.Context, id string) error {
	return s.membership("demote voter", id, s.raft.DemoteVoter(raft.ServerID(id), 0, s.timeout(ctx)))
}

// RemoveServer removes a member from the configuration.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	return s.membership("remove server", id, s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)))
}

// TransferLeadership hands leadership to another voter (graceful shutdown).
func (s *Store) TransferLeadership() error {
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership from %s: %w", s.cfg.NodeID, err)
	}
	return nil
}

// Snapshot asks raft for a snapshot now (backups, tests).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raft snapshot on %s: %w", s.cfg.NodeID, err)
	}
	return nil
}

// LatestSnapshot opens the newest raft snapshot for reading (backups). The
// caller closes it.
func (s *Store) LatestSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	metas, err := s.snapshots.List()
	if err != nil {
		return nil, nil, fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil, nil, fmt.Errorf("raft snapshot: %w", ErrNotFound)
	}
	meta, rc, err := s.snapshots.Open(metas[0].ID)
	if err != nil {
		return nil, nil, fmt.Errorf("open raft snapshot %s: %w", metas[0].ID, err)
	}
	return meta, rc, nil
}

// FirstLogIndex is the oldest entry still in this node's raft log: what
// raft's snapshots have not compacted away yet.
func (s *Store) FirstLogIndex() (uint64, error) {
	first, err := s.logs.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("raft log of %s: first index: %w", s.cfg.NodeID, err)
	}
	return first, nil
}

// Close shuts raft down and closes the stores. It does not leave the
// cluster. Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := s.raft.Shutdown().Error()
		close(s.done)
		s.wg.Wait()
		s.persistApplied()
		if cerr := s.closeAll(); err == nil {
			err = cerr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("close raft store %s: %w", s.cfg.NodeID, err)
		}
	})
	return s.closeErr
}

func (s *Store) closeAll() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// timedFSM times the FSM's applies for StoreConfig.OnApply.
type timedFSM struct {
	*FSM
	observe func(entries int, took time.Duration)
}

var _ raft.BatchingFSM = (*timedFSM)(nil)

func (t *timedFSM) Apply(l *raft.Log) any {
	start := time.Now()
	r := t.FSM.Apply(l)
	t.observe(1, time.Since(start))
	return r
}

func (t *timedFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	r := t.FSM.ApplyBatch(logs)
	t.observe(len(logs), time.Since(start))
	return r
}
