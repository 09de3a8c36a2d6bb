package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrClosed is returned by calls on a Mesh after Shutdown.
	ErrClosed = errors.New("mesh: shut down")
	// ErrLeft is returned by Join and UpdateMeta after Leave: a node that
	// left cannot come back without a restart (memberlist ignores its own
	// alive messages once it has left).
	ErrLeft = errors.New("mesh: this node has left the mesh")
	// ErrBroadcastTimeout is returned by Leave when the leave message was
	// not sent out before the deadline. This node is still marked left
	// locally and the message spreads through push/pull.
	ErrBroadcastTimeout = errors.New("mesh: broadcast not sent before the deadline")
)

// Mesh is this node's membership in the gossip mesh. All methods are safe
// for concurrent use.
type Mesh struct {
	cfg     Config
	logger  *slog.Logger
	keyring *memberlist.Keyring
	meta    *delegate
	ml      *memberlist.Memberlist
	reader  *stateReader
	self    string // this node's gossip address, host:port
	now     func() time.Time

	// lifeMu orders Leave and UpdateMeta against Shutdown: memberlist
	// panics on Leave after Shutdown.
	lifeMu   sync.Mutex
	updateMu sync.Mutex // one UpdateMeta at a time

	mu      sync.Mutex
	members map[string]*memberRecord
	gen     uint64 // bumped by every event-delegate change
	events  *eventQueue
	changed chan struct{}
	closed  bool

	kick   chan struct{} // asks the state loop for an immediate read
	done   chan struct{} // closed by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// memberRecord is a Member plus bookkeeping.
type memberRecord struct {
	Member
	// gen is Mesh.gen when an event last changed this record; a state read
	// that started earlier must not overwrite it.
	gen uint64
	// pendingGone: memberlist reported dead-or-left; a state read decides.
	pendingGone bool
}

// pendingGoneReads is how many state intervals a dead-or-left notice may
// wait for a successful read before it is taken as dead.
const pendingGoneReads = 10

// New validates cfg, starts memberlist (listening on BindAddr:BindPort) and
// the state loop. The node is alone until Join.
func New(cfg Config) (*Mesh, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Keys = slices.Clone(cfg.Keys)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.NodeID)
	metaBytes, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	keyring, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: keyring: %v", ErrInvalidConfig, err)
	}
	readerName, err := newReaderName()
	if err != nil {
		return nil, err
	}
	m := &Mesh{
		cfg:     cfg,
		logger:  logger,
		keyring: keyring,
		meta:    &delegate{},
		now:     time.Now,
		members: make(map[string]*memberRecord),
		events:  newEventQueue(cfg.EventBuffer),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	m.meta.setMeta(metaBytes)

	mc := cfg.memberlistConfig(keyring, logger)
	mc.Delegate = m.meta
	mc.Events = &eventDelegate{m: m}
	mc.Alive = newAliveDelegate(logger)
	mc.Merge = &mergeDelegate{readerName: readerName}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("mesh: start gossip on %s: %w", net.JoinHostPort(cfg.BindAddr, fmt.Sprint(cfg.BindPort)), err)
	}
	m.ml = ml
	m.self = ml.LocalNode().Address()

	reader, err := newStateReader(readerName, cfg.ClusterName, keyring, cfg.TCPTimeout, dialerFor(cfg.Transport), logger)
	if err != nil {
		_ = ml.Shutdown()
		return nil, err
	}
	m.reader = reader

	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go m.stateLoop(ctx)
	logger.Info("gossip started", "addr", m.self, "cluster", cfg.ClusterName)
	return m, nil
}

// Join contacts the given gossip addresses (host:port, or host for the
// default port) and merges state with them. It retries with backoff until at
// least one answers, ctx ends or the Mesh shuts down, and returns how many
// answered on the successful attempt.
func (m *Mesh) Join(ctx context.Context, addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, fmt.Errorf("%w: join: no addresses", ErrInvalidConfig)
	}
	for _, a := range addrs {
		if !validJoinAddr(a) {
			return 0, fmt.Errorf("%w: join address %q: want host:port", ErrInvalidConfig, safeName(a))
		}
	}
	backoff := m.cfg.JoinBackoff
	for attempt := 1; ; attempt++ {
		if m.isClosed() {
			return 0, ErrClosed
		}
		if m.hasLeft() {
			return 0, ErrLeft
		}
		n, err := m.ml.Join(addrs)
		if n > 0 {
			m.logger.Info("joined the mesh", "contacted", n, "attempt", attempt)
			m.poke()
			return n, nil
		}
		m.logger.Debug("join attempt failed", "addrs", addrs, "attempt", attempt, "err", err)
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, m.cfg.JoinBackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("mesh: join %s: %w", strings.Join(addrs, ","), errors.Join(ctx.Err(), err))
		case <-m.done:
			t.Stop()
			return 0, ErrClosed
		case <-t.C:
		}
	}
}

// validJoinAddr accepts host:port or a bare host.
func validJoinAddr(a string) bool {
	if validHostPort(a) {
		return true
	}
	return net.ParseIP(a) != nil || hostPattern.MatchString(a)
}

// Members returns every known member, this node included, sorted by id:
// alive, suspect, and dead or left ones until Config.TombstoneTimeout.
func (m *Mesh) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, r := range m.members {
		out = append(out, r.Member)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Member returns the member with the given id.
func (m *Mesh) Member(id string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.members[id]; ok {
		return r.Member, true
	}
	return Member{}, false
}

// LocalMember returns this node as the mesh sees it.
func (m *Mesh) LocalMember() Member {
	mem, _ := m.Member(m.cfg.NodeID)
	return mem
}

// NumAlive counts members with StatusAlive, this node included.
func (m *Mesh) NumAlive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.members {
		if r.Status == StatusAlive {
			n++
		}
	}
	return n
}

// HealthScore is memberlist's Lifeguard awareness score: 0 is healthy;
// higher means this node missed acks or had to refute suspicion, and it has
// slowed its probing by that factor plus one. For metrics.
func (m *Mesh) HealthScore() int { return m.ml.GetHealthScore() }

// Events returns the channel of member transitions, buffered to
// Config.EventBuffer. It is meant for one consumer. Memberlist is never
// blocked by a slow consumer: when the buffer is full the oldest event is
// dropped and counted (DroppedEvents), so a consumer that may fall behind
// should treat events as hints and re-read Members. The channel is closed by
// Shutdown. Watchers that only need "something changed" use Changed.
func (m *Mesh) Events() <-chan Event { return m.events.ch }

// DroppedEvents counts events discarded because the Events buffer was full.
func (m *Mesh) DroppedEvents() uint64 { return m.events.dropped.Load() }

// Changed returns a channel closed at the next membership change (any event,
// or a status change seen by a state read). Call it again after each wake-up;
// any number of goroutines may wait on it, and nothing is ever dropped.
func (m *Mesh) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// UpdateMeta replaces this node's metadata and gossips it. meta.ID defaults
// to the node id and must equal it; invalid or oversized metadata is refused
// and changes nothing. The update is queued for gossip before UpdateMeta
// returns; it then waits for memberlist to confirm the broadcast went out,
// at most until ctx's deadline or Config.BroadcastTimeout. An unconfirmed
// update is not an error: memberlist's confirmation is lossy (it is dropped
// if it fires before the wait begins), and the update also spreads through
// push/pull.
func (m *Mesh) UpdateMeta(ctx context.Context, meta NodeMeta) error {
	if meta.ID == "" {
		meta.ID = m.cfg.NodeID
	}
	if meta.ID != m.cfg.NodeID {
		return fmt.Errorf("%w: meta id %q differs from node id %q", ErrInvalidMeta, meta.ID, m.cfg.NodeID)
	}
	b, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mesh: update metadata of %s: %w", m.cfg.NodeID, err)
	}
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	if m.hasLeft() {
		return ErrLeft
	}
	timeout := m.cfg.BroadcastTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	m.meta.setMeta(b)
	if err := m.ml.UpdateNode(timeout); err != nil {
		m.logger.Debug("metadata update queued but its broadcast was not confirmed", "err", err)
	}
	return nil
}

// leavePropagationRounds is how many gossip intervals Leave waits after the
// leave message is out.
const leavePropagationRounds = 3

// Leave tells the mesh this node is leaving (others mark it StatusLeft, and
// the voter policy removes it at once) and waits up to timeout for the
// message to be sent. Gossip keeps running until Shutdown, which should
// follow.
func (m *Mesh) Leave(timeout time.Duration) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	if timeout <= 0 {
		timeout = m.cfg.BroadcastTimeout
	}
	began := time.Now()
	err := m.ml.Leave(timeout)
	if err == nil {
		// memberlist returns once the message has been sent its quota of
		// times; give the receivers a couple of gossip rounds to pass it on
		// before the caller shuts down (which would otherwise look like a
		// failure to a peer that missed it).
		t := time.NewTimer(min(leavePropagationRounds*m.cfg.GossipInterval, max(timeout-time.Since(began), 0)))
		<-t.C
	}
	m.mu.Lock()
	if r, ok := m.members[m.cfg.NodeID]; ok && r.Status != StatusLeft {
		m.setStatusLocked(r, StatusLeft, EventLeave)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mesh: leave %s: %w (%v)", m.cfg.NodeID, ErrBroadcastTimeout, err)
	}
	m.logger.Info("left the mesh")
	return nil
}

// Shutdown stops gossip without leaving (peers will detect this node as
// dead), stops the state loop and closes the Events channel. It is safe to
// call more than once.
func (m *Mesh) Shutdown() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	m.mu.Unlock()

	m.cancel()
	m.wg.Wait()
	errs := []error{}
	if err := m.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("mesh: stop gossip: %w", err))
	}
	if err := m.reader.shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("mesh: stop state reader: %w", err))
	}
	m.mu.Lock()
	m.events.close()
	close(m.changed)
	m.changed = make(chan struct{}) // never closed: waiters after Shutdown block until their own ctx ends
	m.mu.Unlock()
	m.logger.Info("gossip stopped")
	return errors.Join(errs...)
}

// hasLeft reports whether this node has left the mesh.
func (m *Mesh) hasLeft() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.members[m.cfg.NodeID]
	return ok && r.Status == StatusLeft
}

func (m *Mesh) isClosed() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// poke asks the state loop for a read now.
func (m *Mesh) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}
