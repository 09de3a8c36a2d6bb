package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Op is a cloud operation: it returns what it changed, for the state.
type Op func(ctx context.Context) (raftfsm.CloudChanges, error)

// Intents records cloud operations as intents and resolves them, and
// holds the set of intents, by id, this agent is carrying out right now.
// An operation is claimed before its intent is recorded (Run) or resumed
// and released once its outcome is committed, so resuming never runs an
// intent a second time while a duty of this node still runs it. It lives
// as long as the agent, not one leadership: an operation still unwinding
// from a lost leadership stays claimed if this node leads again.
// Creations and snapshots need no claim: the cloud duty alone advances
// them, from one goroutine.
type Intents struct {
	src   Source
	now   func() time.Time
	newID func() string

	mu  sync.Mutex
	ids map[string]bool
}

// NewIntents makes the intents of src; now stamps the commands and newID
// names each new intent.
func NewIntents(src Source, now func() time.Time, newID func() string) *Intents {
	return &Intents{src: src, now: now, newID: newID, ids: map[string]bool{}}
}

// Claim marks id in flight; false means it already is.
func (x *Intents) Claim(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ids[id] {
		return false
	}
	x.ids[id] = true
	return true
}

// Release ends a claim.
func (x *Intents) Release(id string) {
	x.mu.Lock()
	delete(x.ids, id)
	x.mu.Unlock()
}

// Run records an intent, runs op, and records the outcome and changes.
// The intent is claimed from before it is recorded until its outcome is
// committed.
func (x *Intents) Run(ctx context.Context, kind raftfsm.IntentKind, target string, params map[string]string, op Op) error {
	id := x.newID()
	x.Claim(id)
	defer x.Release(id)
	if _, err := x.src.Apply(ctx, &raftfsm.RecordIntent{At: x.now(), Intent: raftfsm.Intent{ID: id, Kind: kind, Target: target, Params: params}}); err != nil {
		return err
	}
	return x.Finish(ctx, id, kind, target, op)
}

// Finish runs op for a recorded intent and commits its outcome. The caller
// holds the intent's claim.
func (x *Intents) Finish(ctx context.Context, id string, kind raftfsm.IntentKind, target string, op Op) error {
	changes, opErr := op(ctx)
	res := &raftfsm.ResolveIntent{At: x.now(), IntentID: id, Status: raftfsm.IntentDone, Changes: changes}
	if opErr != nil {
		res.Status, res.Error = raftfsm.IntentFailed, opErr.Error()
	}
	if err := x.Resolve(ctx, res); err != nil {
		return errors.Join(opErr, err)
	}
	if opErr != nil {
		return fmt.Errorf("%s %s: %w", kind, target, opErr)
	}
	return nil
}

// Resolve commits an intent's outcome. It is committed even when ctx ran
// out (a round's deadline: the failure is recorded). After a lost
// leadership the commit fails and the intent stays pending, for the next
// leader to resume.
func (x *Intents) Resolve(ctx context.Context, res *raftfsm.ResolveIntent) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	_, err := x.src.Apply(ctx, res)
	return err
}

// Pending returns the pending intents of the given kinds, oldest first.
func (x *Intents) Pending(kinds ...raftfsm.IntentKind) []raftfsm.Intent {
	var out []raftfsm.Intent
	x.src.View(func(s *raftfsm.State) {
		for _, in := range s.Cloud.PendingIntents() {
			if slices.Contains(kinds, in.Kind) {
				out = append(out, *in)
			}
		}
	})
	return out
}
