package leader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Raft is what the leadership loop needs of the raft store
// (raftfsm.Store has it).
type Raft interface {
	// LeadershipChanged returns a channel closed on the next change.
	LeadershipChanged() <-chan struct{}
	// IsLeader reports whether this node leads now.
	IsLeader() bool
	// Barrier waits until every committed entry is applied.
	Barrier(ctx context.Context) error
	// Term is the current raft term (for the log).
	Term() uint64
}

// Duty is one of the leader's jobs: Run runs in its own goroutine while
// this node leads and returns when its context ends.
type Duty struct {
	Name string
	Run  func(ctx context.Context)
}

// Loop starts and stops the leader's duties as leadership comes and goes.
type Loop struct {
	// Raft tells leadership.
	Raft Raft
	// Establish runs once per leadership after the barrier, before the
	// duties start (the seed's cluster initialisation); its error is
	// logged and the duties start anyway.
	Establish func(ctx context.Context) error
	// Duties lists the duties to start on each leadership.
	Duties func() []Duty
	// Logger receives the loop's and the duties' failures.
	Logger *slog.Logger
	// BarrierTimeout bounds one barrier attempt (default 10 s).
	BarrierTimeout time.Duration
}

// Run starts the duties when this node becomes leader and stops them when
// it loses leadership, until ctx ends. Leadership changes come from
// Raft.LeadershipChanged, which never drops a change.
func (l Loop) Run(ctx context.Context) {
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		changed := l.Raft.LeadershipChanged()
		switch leading := l.Raft.IsLeader(); {
		case leading && stop == nil:
			stop = l.establish(ctx)
		case !leading && stop != nil:
			stop()
			stop = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// establish runs lead until the returned revoke is called.
func (l Loop) establish(ctx context.Context) (revoke func()) {
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.lead(dctx)
	}()
	return func() {
		cancel()
		<-done
		l.Logger.Info("leader duties stopped")
	}
}

// lead runs while this node is leader: it waits for every committed entry
// to be applied (barrier), runs Establish, then runs the duties.
func (l Loop) lead(ctx context.Context) {
	timeout := l.BarrierTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	for {
		bctx, cancel := context.WithTimeout(ctx, timeout)
		err := l.Raft.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, raftfsm.ErrNotLeader) {
			return
		}
		l.Logger.Warn("barrier on taking leadership failed; retrying", "err", err)
	}
	l.Logger.Info("leading the cluster", "term", l.Raft.Term())
	if l.Establish != nil {
		if err := l.Establish(ctx); err != nil {
			l.Logger.Error("initialise cluster", "err", err)
		}
	}
	var wg sync.WaitGroup
	for _, d := range l.Duties() {
		wg.Add(1)
		go func(d Duty) {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					l.Logger.Error("leader duty panicked", "duty", d.Name, "panic", p)
				}
			}()
			d.Run(ctx)
		}(d)
	}
	wg.Wait()
}
