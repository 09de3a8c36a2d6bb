package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RaftMembership is what the voter manager needs of the raft store (node
// adapts raftfsm.Store to it). Every method runs on the leader.
type RaftMembership interface {
	// Servers returns the current raft configuration.
	Servers(ctx context.Context) ([]RaftServer, error)
	// AddVoter adds a voter, or promotes an existing non-voter.
	AddVoter(ctx context.Context, id, addr string) error
	// AddNonvoter adds a non-voter.
	AddNonvoter(ctx context.Context, id, addr string) error
	// DemoteVoter makes a voter a non-voter.
	DemoteVoter(ctx context.Context, id string) error
	// RemoveServer removes a server.
	RemoveServer(ctx context.Context, id string) error
}

// Autopilot keeps the raft voters in step with the mesh: it runs Plan on
// every membership change and every VoterPolicy.ReconcileInterval, and
// applies the first change, re-reading the raft configuration before the
// next, so every step is planned from the configuration it changes.
type Autopilot struct {
	mesh   *Mesh
	raft   RaftMembership
	policy VoterPolicy
	logger *slog.Logger
	now    func() time.Time

	// missing remembers when each raft server without a gossip member was
	// first noticed; Plan sees it as dead since then, so a server the mesh
	// has forgotten (or never heard of since this leader started) is
	// removed only after DeadServerTimeout.
	missing map[string]time.Time
}

// Autopilot limits.
const (
	// maxStepsPerPass bounds the changes applied in one reconcile pass; the
	// next trigger continues.
	maxStepsPerPass = 16
	// changeTimeout bounds one raft configuration change.
	changeTimeout = 30 * time.Second
)

// NewAutopilot returns an Autopilot for the leader running m. A nil logger
// discards.
func NewAutopilot(m *Mesh, r RaftMembership, p VoterPolicy, logger *slog.Logger) *Autopilot {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Autopilot{mesh: m, raft: r, policy: p.withDefaults(), logger: logger, now: time.Now, missing: map[string]time.Time{}}
}

// Run reconciles until ctx ends. The caller runs it only while this node is
// the raft leader and cancels ctx when leadership is lost.
func (a *Autopilot) Run(ctx context.Context) {
	t := time.NewTicker(a.policy.ReconcileInterval)
	defer t.Stop()
	for {
		changed := a.mesh.Changed()
		if err := a.reconcile(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("voter reconcile failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// reconcile plans and applies changes one at a time until the plan is empty.
func (a *Autopilot) reconcile(ctx context.Context) error {
	for range maxStepsPerPass {
		if err := ctx.Err(); err != nil {
			return err
		}
		servers, err := a.raft.Servers(ctx)
		if err != nil {
			return fmt.Errorf("autopilot: read raft servers: %w", err)
		}
		now := a.now()
		changes := Plan(now, a.mesh.cfg.NodeID, a.members(now, servers), servers, a.policy)
		if len(changes) == 0 {
			return nil
		}
		if err := a.apply(ctx, changes[0]); err != nil {
			return err
		}
	}
	return nil
}

// members is the mesh's view plus a dead placeholder for each raft server
// the mesh does not know.
func (a *Autopilot) members(now time.Time, servers []RaftServer) []Member {
	members := a.mesh.Members()
	known := make(map[string]bool, len(members))
	for _, m := range members {
		known[m.ID] = true
	}
	isServer := make(map[string]bool, len(servers))
	for _, s := range servers {
		isServer[s.ID] = true
		if known[s.ID] || s.ID == a.mesh.cfg.NodeID {
			continue
		}
		since, ok := a.missing[s.ID]
		if !ok {
			since = now
			a.missing[s.ID] = since
			a.logger.Info("raft server has no gossip member; treating it as dead", "server", s.ID, "addr", s.Address)
		}
		members = append(members, Member{ID: s.ID, Status: StatusDead, Since: since})
	}
	for id := range a.missing {
		if known[id] || !isServer[id] {
			delete(a.missing, id)
		}
	}
	return members
}

// apply makes one change.
func (a *Autopilot) apply(ctx context.Context, c Change) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var err error
	switch c.Kind {
	case AddVoter, Promote:
		err = a.raft.AddVoter(ctx, c.ID, c.Address)
	case AddNonvoter:
		err = a.raft.AddNonvoter(ctx, c.ID, c.Address)
	case Demote:
		err = a.raft.DemoteVoter(ctx, c.ID)
	case Remove:
		err = a.raft.RemoveServer(ctx, c.ID)
	default:
		return fmt.Errorf("autopilot: unknown change kind %d", int(c.Kind))
	}
	if err != nil {
		return fmt.Errorf("autopilot: %s: %w", c, err)
	}
	a.logger.Info("raft configuration changed", "change", c.Kind.String(), "server", c.ID, "addr", c.Address, "reason", c.Reason)
	return nil
}
