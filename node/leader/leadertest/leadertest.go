// Package leadertest is the in-memory state the leader duties' tests run
// against: a raftfsm.FSM that applies each command directly, in order, one
// index each, as the leader's raft store would, without raft or the mesh.
// Only tests import it.
package leadertest

import (
	"context"
	"sync"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// State is a replicated state without raft: View, Changed and Apply of a
// leader duty's Source.
type State struct {
	fsm *raftfsm.FSM

	mu       sync.Mutex
	index    uint64
	applies  []raftfsm.Command
	applyErr error
}

// New makes an empty state.
func New() *State { return &State{fsm: raftfsm.NewFSM(nil)} }

// FSM is the state's FSM.
func (s *State) FSM() *raftfsm.FSM { return s.fsm }

// View reads the state.
func (s *State) View(fn func(*raftfsm.State)) { s.fsm.View(fn) }

// Changed returns a channel closed on the next change.
func (s *State) Changed() <-chan struct{} { return s.fsm.Changed() }

// Apply commits cmd like the leader's raft store (or fails with the error
// given to FailApplies).
func (s *State) Apply(_ context.Context, cmd raftfsm.Command) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applyErr != nil {
		return nil, s.applyErr
	}
	s.index++
	s.applies = append(s.applies, cmd)
	return s.fsm.ApplyCommand(s.index, cmd)
}

// Must applies cmd and fails the test on an error.
func (s *State) Must(t testing.TB, cmd raftfsm.Command) any {
	t.Helper()
	v, err := s.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", cmd.Type(), err)
	}
	return v
}

// FailApplies makes every later Apply fail with err (nil: succeed again).
func (s *State) FailApplies(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyErr = err
}

// Applied returns the commands applied so far through Apply.
func (s *State) Applied() []raftfsm.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]raftfsm.Command(nil), s.applies...)
}
