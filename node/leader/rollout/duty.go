package rollout

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/dropmesh/dropmesh/node/leader"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the duty needs of the cluster: read the state, wait for a
// change, commit a command (on the leader).
type Source interface {
	View(fn func(*raftfsm.State))
	Changed() <-chan struct{}
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}

// Config tunes the duty.
type Config struct {
	// Logger receives progress and failures.
	Logger *slog.Logger
	// Now is the clock (commands carry its time stamps).
	Now func() time.Time
	// Wake is the duty's own wake-up channel (leader.Wakeups.Chan).
	Wake <-chan struct{}
	// Interval is the longest time between two rounds (default 1 s: a
	// deadline passes without a state change).
	Interval time.Duration
}

// Name is the duty's name (logs, wake-up channel).
const Name = "rollout"

// Run moves the rolling deploys forward until ctx ends.
func Run(ctx context.Context, src Source, cfg Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	leader.Every{Name: Name, Interval: cfg.Interval, Changed: src.Changed, Wake: cfg.Wake, Logger: cfg.Logger}.
		Run(ctx, func(ctx context.Context) error { return Round(ctx, src, cfg.Now(), cfg.Logger) })
}

// Round plans every rolling deploy once and commits the steps.
func Round(ctx context.Context, src Source, now time.Time, log *slog.Logger) error {
	type planned struct {
		d    raftfsm.Deploy
		step Step
	}
	var steps []planned
	src.View(func(s *raftfsm.State) {
		for _, d := range Rolling(s) {
			if st := Plan(s, d, now); st.Finish != "" || len(st.Advance) > 0 {
				steps = append(steps, planned{*d, st})
			}
		}
	})
	for _, x := range steps {
		var err error
		if x.step.Finish != "" {
			_, err = src.Apply(ctx, &raftfsm.FinishDeploy{At: now, DeployID: x.d.ID, Status: x.step.Finish, Reason: x.step.Reason})
			log.Info("deploy finished", "deploy", x.d.ID, "service", x.d.Service, "status", x.step.Finish, "reason", x.step.Reason)
		} else {
			_, err = src.Apply(ctx, &raftfsm.AdvanceRollout{At: now, DeployID: x.d.ID, Service: x.d.Service, Generation: x.d.Generation, Instances: x.step.Advance})
			log.Info("roll-out advanced", "deploy", x.d.ID, "service", x.d.Service, "instances", x.step.Advance)
		}
		if err != nil && !errors.Is(err, raftfsm.ErrConflict) {
			return err
		}
	}
	return nil
}
