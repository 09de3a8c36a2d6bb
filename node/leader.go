package node

import (
	"context"
	"net/netip"
	"slices"

	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/backup"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/node/leader"
	"github.com/dropmesh/dropmesh/node/leader/healer"
	"github.com/dropmesh/dropmesh/node/leader/keyring"
	"github.com/dropmesh/dropmesh/node/leader/members"
	"github.com/dropmesh/dropmesh/node/leader/rollout"
	"github.com/dropmesh/dropmesh/node/notify"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// duties lists the leader's jobs.
func (a *Agent) duties() []leader.Duty {
	return []leader.Duty{
		{Name: "autopilot", Run: a.runAutopilot},
		{Name: members.Name, Run: a.runRegistrar},
		{Name: rollout.Name, Run: a.runRollouts},
		{Name: healer.Name, Run: a.runHealer},
		{Name: healer.RestartsName, Run: a.runRestarts},
		{Name: "cloud", Run: a.runCloud},
		{Name: "housekeeping", Run: a.runHousekeeping},
		{Name: "images", Run: a.runImageBuilds},
		{Name: keyring.Name, Run: a.runGossipRotation},
		{Name: "acme", Run: a.runACME},
		{Name: "notify", Run: func(ctx context.Context) {
			client := egress.Policy{AllowFrom: a.egressAllowed}.Client(10 * time.Second)
			notify.Run(ctx, a, notify.Config{HTTPClient: client, Logger: a.logger.With("duty", "notify"), Now: a.now, Sealer: a.keys.Sealer})
		}},
		{Name: "backup", Run: func(ctx context.Context) {
			backup.Run(ctx, backup.StoreSource(a.store), a.keys.Sealer, backup.Config{Logger: a.logger.With("duty", "backup"), Now: a.now, Key: a.keys.Backup})
		}},
	}
}

// Apply commits a command on the leader: the agent is the Source of the
// leader duties' packages (node/leader/..., notify). It is apply, with the
// command-version check.
func (a *Agent) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	return a.apply(ctx, cmd)
}

// leaderLoop starts the duties when this node becomes leader and stops them
// when it loses leadership (package leader).
func (a *Agent) leaderLoop(ctx context.Context) {
	leader.Loop{Raft: a.store, Establish: a.initCluster, Duties: a.duties, Logger: a.logger}.Run(ctx)
}

// every calls fn now, then on each tick, state change (when onChange) or
// kick of this duty until ctx ends. fn's errors are logged, never fatal.
func (a *Agent) every(ctx context.Context, name string, interval time.Duration, onChange bool, fn func(ctx context.Context) error) {
	e := leader.Every{Name: name, Interval: interval, Wake: a.wake.Chan(name), Logger: a.logger}
	if onChange {
		e.Changed = a.fsm.Changed
	}
	e.Run(ctx, fn)
}

// runAutopilot keeps the raft voters in step with the gossip members.
func (a *Agent) runAutopilot(ctx context.Context) {
	ap := mesh.NewAutopilot(a.mesh, members.Voters{Store: a.store}, mesh.VoterPolicy{MaxVoters: 5, DeadServerTimeout: a.cfg.DeadServerTimeout},
		a.logger.With("duty", "autopilot"))
	ap.Run(ctx)
}

// runRegistrar records every alive member as a node (package members).
func (a *Agent) runRegistrar(ctx context.Context) {
	members.RunRegistrar(ctx, a, a.mesh, a.now, a.logger)
}

// runRollouts moves rolling deploys forward (package rollout).
func (a *Agent) runRollouts(ctx context.Context) {
	rollout.Run(ctx, a, rollout.Config{Logger: a.logger, Now: a.now, Wake: a.wake.Chan(rollout.Name)})
}

// runHousekeeping purges health history older than the retention.
func (a *Agent) runHousekeeping(ctx context.Context) {
	a.every(ctx, "housekeeping", time.Hour, false, func(ctx context.Context) error {
		now := a.now()
		_, err := a.apply(ctx, &raftfsm.PurgeHistory{At: now, Before: now.Add(-raftfsm.HistoryRetention)})
		return err
	})
}

// egressAllowed is the cluster's egress_allow setting: the private ranges
// webhooks may reach (node/egress refuses them otherwise). A range that
// does not parse as private is skipped (UpdateSettings refuses it).
func (a *Agent) egressAllowed() []netip.Prefix {
	var ranges []string
	a.fsm.View(func(s *raftfsm.State) { ranges = slices.Clone(s.Settings.EgressAllow) })
	var out []netip.Prefix
	for _, r := range ranges {
		if p, err := egress.ParseAllowed([]string{r}); err == nil {
			out = append(out, p...)
		}
	}
	return out
}
