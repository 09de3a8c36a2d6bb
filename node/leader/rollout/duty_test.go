package rollout

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// fixed is a Source over a state the test builds; it records the commands.
type fixed struct {
	mu      sync.Mutex
	s       *raftfsm.State
	applied chan raftfsm.Command
}

func (f *fixed) View(fn func(*raftfsm.State)) { f.mu.Lock(); defer f.mu.Unlock(); fn(f.s) }
func (f *fixed) Changed() <-chan struct{}     { return make(chan struct{}) }
func (f *fixed) Apply(_ context.Context, cmd raftfsm.Command) (any, error) {
	f.applied <- cmd
	return nil, nil
}

// The duty commits the planned step: the first batch of a new deploy.
func TestRoundAdvancesTheFirstBatch(t *testing.T) {
	s, d := rolloutState(3, 1)
	src := &fixed{s: s, applied: make(chan raftfsm.Command, 4)}
	if err := Round(context.Background(), src, now0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	select {
	case cmd := <-src.applied:
		adv, ok := cmd.(*raftfsm.AdvanceRollout)
		if !ok || adv.DeployID != d.ID || len(adv.Instances) != 1 || adv.Instances[0] != "abcdef/shop/prod/web#0" {
			t.Fatalf("committed %#v", cmd)
		}
	default:
		t.Fatal("nothing committed")
	}
}

// A kick on the duty's own channel runs a round, without a state change
// or a tick.
func TestRunWakesOnItsChannel(t *testing.T) {
	s, _ := rolloutState(3, 1)
	src := &fixed{s: s, applied: make(chan raftfsm.Command, 4)}
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, src, Config{Now: func() time.Time { return now0 }, Wake: wake, Interval: time.Hour})
	}()
	<-src.applied // the first round
	wake <- struct{}{}
	select {
	case <-src.applied:
	case <-time.After(5 * time.Second):
		t.Fatal("the kick did not run a round")
	}
	cancel()
	<-done
}
