package node

import (
	"context"
	"github.com/dropmesh/dropmesh/node/leader"
	"github.com/dropmesh/dropmesh/node/leader/healer"
	"github.com/dropmesh/dropmesh/node/leader/keyring"
	"github.com/dropmesh/dropmesh/node/leader/rollout"
	"net/netip"
	"slices"

	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/backup"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/node/notify"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// duties lists the leader's jobs.
func (a *Agent) duties() []leader.Duty {
	return []leader.Duty{
		{Name: "autopilot", Run: a.runAutopilot},
		{Name: "registrar", Run: a.runRegistrar},
		{Name: rollout.Name, Run: a.runRollouts},
		{Name: healer.Name, Run: a.runHealer},
		{Name: healer.RestartsName, Run: a.runRestarts},
		{Name: "cloud", Run: a.runCloud},
		{Name: "housekeeping", Run: a.runHousekeeping},
		{Name: keyring.Name, Run: a.runGossipRotation},
		{Name: "notify", Run: func(ctx context.Context) {
			client := egress.Policy{AllowFrom: a.egressAllowed}.Client(10 * time.Second)
			notify.Run(ctx, a, notify.Config{HTTPClient: client, Logger: a.logger.With("duty", "notify"), Now: a.now, Sealer: a.keys.Sealer})
		}},
		{Name: "backup", Run: func(ctx context.Context) {
			backup.Run(ctx, backup.StoreSource(a.store), a.keys.Sealer, backup.Config{Logger: a.logger.With("duty", "backup"), Now: a.now, Key: a.keys.Backup})
		}},
	}
}

// Apply commits a command on the leader (the leader duties of other
// packages use it: notify). It is apply, with the command-version check.
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
	ap := mesh.NewAutopilot(a.mesh, raftMembership{a.store}, mesh.VoterPolicy{MaxVoters: 5, DeadServerTimeout: a.cfg.DeadServerTimeout},
		a.logger.With("duty", "autopilot"))
	ap.Run(ctx)
}

// runRegistrar records every alive member with valid metadata as a node, as
// soon as the mesh sees it (and every few seconds, to catch anything missed).
func (a *Agent) runRegistrar(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		changed := a.mesh.Changed()
		if err := a.registerMembers(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("leader duty failed", "duty", "registrar", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (a *Agent) registerMembers(ctx context.Context) error {
	for _, m := range a.mesh.Members() {
		if m.Status != mesh.StatusAlive || m.Meta.ID == "" {
			continue
		}
		node := nodeFromMeta(m.Meta)
		var current *raftfsm.Node
		a.fsm.View(func(s *raftfsm.State) {
			if n, ok := s.Nodes[node.ID]; ok {
				c := *n
				current = &c
			}
		})
		if current != nil && sameAddresses(*current, node) {
			continue
		}
		if _, err := a.apply(ctx, &raftfsm.UpsertNode{At: a.now(), Node: node}); err != nil {
			return err
		}
	}
	return nil
}

func nodeFromMeta(m mesh.NodeMeta) raftfsm.Node {
	return raftfsm.Node{ID: m.ID, DropletID: m.DropletID, Region: m.Region, PublicIP: m.PublicIP, PrivateIP: m.PrivateIP,
		API: m.API, UI: m.UI, Edge: m.Edge, Raft: m.Raft, Version: m.Version}
}

func sameAddresses(a, b raftfsm.Node) bool {
	return a.DropletID == b.DropletID && a.Region == b.Region && a.PublicIP == b.PublicIP && a.PrivateIP == b.PrivateIP &&
		a.API == b.API && a.UI == b.UI && a.Edge == b.Edge && a.Raft == b.Raft && a.Version == b.Version
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

// raftMembership adapts the raft store to what mesh's autopilot needs.
type raftMembership struct{ s *raftfsm.Store }

func (r raftMembership) Servers(ctx context.Context) ([]mesh.RaftServer, error) {
	servers, err := r.s.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mesh.RaftServer, len(servers))
	for i, s := range servers {
		out[i] = mesh.RaftServer{ID: s.ID, Address: s.Address, Voter: s.Voter}
	}
	return out, nil
}

func (r raftMembership) AddVoter(ctx context.Context, id, addr string) error {
	return r.s.AddVoter(ctx, id, addr)
}

func (r raftMembership) AddNonvoter(ctx context.Context, id, addr string) error {
	return r.s.AddNonvoter(ctx, id, addr)
}

func (r raftMembership) DemoteVoter(ctx context.Context, id string) error {
	return r.s.DemoteVoter(ctx, id)
}

func (r raftMembership) RemoveServer(ctx context.Context, id string) error {
	return r.s.RemoveServer(ctx, id)
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
