package raftfsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Errors of the read path that callers branch on.
var (
	// ErrCatchingUp: this node has not yet applied what it had applied
	// before it stopped, or has not heard from a leader since it started.
	// It serves no read, stale or not, until it has (callers answer 503
	// with a Retry-After).
	ErrCatchingUp = errors.New("this node is catching up with the cluster")
	// ErrOutcomeUnknown: a write reached raft but its fate is not known (the
	// leader lost its leadership, or the caller's deadline passed while it
	// waited): it may still commit. Callers must not repeat it blindly.
	ErrOutcomeUnknown = errors.New("the write may or may not have been applied")
)

// appliedIndexKey is where the stable store keeps the index this node had
// applied, so a restarted node knows how far it must catch up before it
// serves reads.
var appliedIndexKey = []byte("dropmesh_applied_index")

// readState is the Store's bookkeeping of the read path.
type readState struct {
	// floor is the index the node must have applied before it serves reads:
	// what it had applied before it stopped (persisted), at least its newest
	// snapshot's index.
	floor uint64
	// contactCommit is the commit index this node knew when it first heard
	// from a leader after starting; caught up also needs it applied.
	contactCommit atomic.Uint64
	caughtUp      atomic.Bool
	opened        time.Time
	// verified is when (monotonic, since opened) this node last confirmed
	// its leadership with a quorum; -1 when never.
	verified atomic.Int64

	persistMu sync.Mutex
	persisted uint64

	// termMu guards term and termFrom: the term this node last became the
	// leader in, and the index its own first entry of that term (raft's
	// no-op) has at least. Once the commit index reaches termFrom in that
	// same term, it covers every write acknowledged so far.
	termMu   sync.Mutex
	term     uint64
	termFrom uint64
}

// tookLeadership records where this node's leadership begins (called on
// raft's leadership notification).
func (s *Store) tookLeadership() {
	term, last := s.raft.CurrentTerm(), s.raft.LastIndex()
	s.reads.termMu.Lock()
	s.reads.term, s.reads.termFrom = term, last+1
	s.reads.termMu.Unlock()
}

// readIndexOf is the index a read must wait for, given the current term:
// the commit index once this term's first entry is committed (then it
// covers every acknowledged write), else the last index (which does too,
// at the price of waiting for entries still being committed).
func (s *Store) readIndexOf(term uint64) uint64 {
	commit, last := s.raft.CommitIndex(), s.raft.LastIndex()
	s.reads.termMu.Lock()
	ready := s.reads.term == term && s.reads.termFrom > 0 && commit >= s.reads.termFrom
	s.reads.termMu.Unlock()
	if ready {
		return commit
	}
	return last
}

// initReads loads the floor; called by OpenStore before raft starts.
func (s *Store) initReads(stable raft.StableStore) {
	s.reads.opened = time.Now()
	s.reads.verified.Store(-1)
	if v, err := stable.GetUint64(appliedIndexKey); err == nil {
		s.reads.floor = v
	}
	if metas, err := s.snapshots.List(); err == nil && len(metas) > 0 && metas[0].Index > s.reads.floor {
		s.reads.floor = metas[0].Index
	}
	s.reads.persisted = s.reads.floor
	s.stable = stable
}

// ReadFloor is the index this node must reach before it serves reads (what
// it had applied before it last stopped).
func (s *Store) ReadFloor() uint64 { return s.reads.floor }

// persistApplied saves the FSM's applied index when it moved; a failure is
// logged and retried at the next call.
func (s *Store) persistApplied() {
	s.reads.persistMu.Lock()
	defer s.reads.persistMu.Unlock()
	idx := s.fsm.Index()
	if idx <= s.reads.persisted {
		return
	}
	if err := s.stable.SetUint64(appliedIndexKey, idx); err != nil {
		s.logger.Warn("save the applied index", "node", s.cfg.NodeID, "index", idx, "err", err)
		return
	}
	s.reads.persisted = idx
}

// keepApplied saves the applied index every AppliedPersistInterval until
// the store closes (Close saves it a last time).
func (s *Store) keepApplied() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.AppliedPersistInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.persistApplied()
		case <-s.done:
			return
		}
	}
}

// CatchUp returns nil once this node may serve reads: it has heard from a
// leader (or leads) since it started and has applied at least what it had
// applied before it stopped and what was committed when it first heard
// from the leader. Until then it returns an error wrapping ErrCatchingUp
// that says how far it is.
func (s *Store) CatchUp() error {
	if s.reads.caughtUp.Load() {
		return nil
	}
	leaderID, _ := s.Leader()
	lead := s.raft.State() == raft.Leader
	contact := s.raft.LastContact()
	if !lead && (leaderID == "" || !contact.After(s.reads.opened)) {
		return fmt.Errorf("%w: it has not heard from a leader since it started (applied %d of at least %d)", ErrCatchingUp, s.fsm.Index(), s.reads.floor)
	}
	if s.reads.contactCommit.Load() == 0 {
		s.reads.contactCommit.CompareAndSwap(0, max(s.CommitIndex(), 1))
	}
	target := max(s.reads.floor, s.reads.contactCommit.Load())
	if !s.applied(target) {
		return fmt.Errorf("%w: it has applied %d of at least %d entries", ErrCatchingUp, s.fsm.Index(), target)
	}
	s.reads.caughtUp.Store(true)
	return nil
}

// ReadIndex confirms with a quorum that this node still leads and returns
// the index a linearizable read must wait for (WaitApplied): every write
// acknowledged before the call is at or below it. It fails with
// ErrNotLeader on a follower and on a leader that lost its quorum (which
// then steps down). It writes nothing to the log.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	term := s.raft.CurrentTerm()
	if s.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	idx := s.readIndexOf(term)
	if err := s.VerifyLeader(ctx); err != nil {
		return 0, err
	}
	if s.raft.CurrentTerm() != term {
		// The leadership confirmed is not the one the index was taken
		// under: another leader may have come between.
		return 0, fmt.Errorf("read index on %s: the term changed meanwhile: %w", s.cfg.NodeID, ErrNotLeader)
	}
	return idx, nil
}

// VerifyLeader confirms with a quorum that this node still leads.
func (s *Store) VerifyLeader(ctx context.Context) error {
	start := time.Since(s.reads.opened)
	f := s.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("verify leadership of %s: %w (%v)", s.cfg.NodeID, ErrNotLeader, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("verify leadership of %s: %w", s.cfg.NodeID, ctx.Err())
	}
	for {
		prev := s.reads.verified.Load()
		if int64(start) <= prev || s.reads.verified.CompareAndSwap(prev, int64(start)) {
			return nil
		}
	}
}

// Contact says how stale a local read on this node may be.
type Contact struct {
	// Leader is the leader this node knows ("" when none).
	Leader string
	// LastContact is how long ago this node last heard from the leader (on
	// the leader: since it last confirmed its leadership with a quorum);
	// Known is false when it never did.
	LastContact time.Duration
	Known       bool
}

// StaleContact describes the contact behind a stale read. A leader whose
// leadership was not confirmed within the leader lease confirms it first,
// so a leader that was paused and resumed steps down instead of serving
// its old state as if it were current.
func (s *Store) StaleContact(ctx context.Context) Contact {
	if s.raft.State() == raft.Leader {
		v := s.reads.verified.Load()
		if v < 0 || time.Since(s.reads.opened)-time.Duration(v) > s.cfg.LeaderLeaseTimeout {
			_ = s.VerifyLeader(ctx)
		}
		if s.raft.State() == raft.Leader {
			if v := s.reads.verified.Load(); v >= 0 {
				return Contact{Leader: s.cfg.NodeID, LastContact: max(time.Since(s.reads.opened)-time.Duration(v), 0), Known: true}
			}
		}
	}
	id, _ := s.Leader()
	c := Contact{Leader: id}
	if last := s.raft.LastContact(); last.After(s.reads.opened) {
		c.LastContact, c.Known = time.Since(last), true
	}
	return c
}

// WaitApplied blocks until this node's FSM reflects every entry up to idx,
// or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, idx uint64) error {
	var (
		timer *time.Timer
		poll  = 250 * time.Microsecond
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed := s.fsm.Changed()
		if s.applied(idx) {
			return nil
		}
		// The FSM never sees raft's own entries (the no-op of a new term,
		// barriers): when idx is one, only raft's applied index moves, and
		// that has no channel, so poll it too, backing off.
		if timer == nil {
			timer = time.NewTimer(poll)
		} else {
			timer.Reset(poll)
		}
		select {
		case <-changed:
		case <-timer.C:
			poll = min(2*poll, 10*time.Millisecond)
		case <-ctx.Done():
			return fmt.Errorf("wait until %s has applied index %d (at %d): %w", s.cfg.NodeID, idx, s.fsm.Index(), ctx.Err())
		}
	}
}

// applied reports whether the FSM reflects every entry up to idx. The FSM's
// own index counts commands and configuration changes only; raft's
// applied index counts every entry but moves when an entry is handed to
// the FSM, before the FSM has applied it. So: the FSM is at idx, or raft
// handed it everything up to idx and the entries between the FSM's index
// and idx are raft's own, which the FSM never sees.
func (s *Store) applied(idx uint64) bool {
	fi := s.fsm.Index()
	if fi >= idx {
		return true
	}
	if s.raft.AppliedIndex() < idx {
		return false
	}
	for i := idx; i > fi; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot, which the FSM holds: everything
			// at or below it is applied.
			first, ferr := s.logs.FirstIndex()
			return ferr == nil && i < first
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}
