package leader

import (
	"context"
	"log/slog"
	"time"
)

// Every is how a periodic duty is woken: on each tick of Interval, on a
// state change (when Changed is set) and on its own wake-up channel.
type Every struct {
	// Name names the duty in logs.
	Name string
	// Interval is the longest time between two rounds.
	Interval time.Duration
	// Changed, when set, returns a channel closed on the next state change
	// (raftfsm.FSM.Changed); a round runs after each change.
	Changed func() <-chan struct{}
	// Wake is the duty's own wake-up channel (Wakeups.Chan); may be nil.
	Wake <-chan struct{}
	// Logger receives a round's errors.
	Logger *slog.Logger
}

// Run calls fn now, then after each tick, change or wake-up until ctx
// ends. fn's errors are logged, never fatal.
func (e Every) Run(ctx context.Context, fn func(ctx context.Context) error) {
	t := time.NewTicker(e.Interval)
	defer t.Stop()
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("duty", e.Name)
	for {
		var changed <-chan struct{}
		if e.Changed != nil {
			changed = e.Changed()
		}
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.Warn("leader duty failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		case <-e.Wake:
		}
	}
}
