package node

import (
	"context"
	"strconv"

	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/node/leader/healer"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The healing duties live in package healer; this is their wiring.

// healerDeps are the healer's hands: this agent's peers, cloud and metrics.
func (a *Agent) healerDeps(wake <-chan struct{}) healer.Deps {
	return healer.Deps{
		Self: a.cfg.NodeID, Now: a.now, Interval: a.healthInterval,
		Ping: a.peers.ping, Probe: a.peers.probe,
		CloudReady: a.cloudReady, PowerCycle: a.powerCycle, Retire: a.retireNode,
		Place: deployplan.Place, NodeDead: a.kickLeader, ObserveHeal: a.metrics.ObserveHeal,
		Logger: a.logger, Wake: wake,
	}
}

// runHealer is the leader's healing loop (package healer).
func (a *Agent) runHealer(ctx context.Context) {
	healer.Run(ctx, a, a.healerDeps(nil))
}

// runRestarts restarts unhealthy containers (package healer).
func (a *Agent) runRestarts(ctx context.Context) {
	healer.RunRestarts(ctx, a, a.healerDeps(a.wake.Chan(healer.RestartsName)))
}

// retireNode is the cloud, raft and CA part of removing a drained node: its
// droplet is deleted (an intent), it leaves the raft configuration and its
// certificates are revoked; the healer then removes it from the state.
func (a *Agent) retireNode(ctx context.Context, n raftfsm.Node) error {
	if c, err := a.cloudClients(); err == nil && c.do != nil && n.DropletID != 0 {
		params := map[string]string{"node": n.ID, "droplet_id": strconv.Itoa(n.DropletID)}
		var name string
		a.fsm.View(func(s *raftfsm.State) { name = dropletName(s.Settings, n.ID) })
		if err := a.cloudShared.intents.Run(ctx, raftfsm.IntentDeleteDroplet, name, params, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			return a.deleteDroplet(ctx, c, name, params)
		}); err != nil {
			return err
		}
	}
	if err := a.store.RemoveServer(ctx, n.ID); err != nil {
		a.logger.Warn("remove drained node from raft", "target", n.ID, "err", err)
	}
	// Removal is revocation: from this commit on, no handshake with the
	// node's certificates succeeds anywhere.
	return a.revokeNode(ctx, n.ID, "drained and removed")
}
