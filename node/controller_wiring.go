package node

import (
	"context"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/controller"
	"github.com/dropmesh/dropmesh/node/ids"
	"github.com/dropmesh/dropmesh/raftfsm"
)

var _ control.Controller = (*Agent)(nil)

// newController builds the API's controller on this agent.
func (a *Agent) newController() *controller.Controller {
	return controller.New(controllerNode{a}, a.keys.Sealer, a.now)
}

// controllerNode is the agent as the controller's Node.
type controllerNode struct{ a *Agent }

func (n controllerNode) View(fn func(s *raftfsm.State)) { n.a.fsm.View(fn) }
func (n controllerNode) IsLeader() bool                 { return n.a.store.IsLeader() }
func (n controllerNode) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	return n.a.apply(ctx, cmd)
}
func (n controllerNode) Report(ctx context.Context, cmd raftfsm.Command) error {
	return n.a.report(ctx, cmd)
}
func (n controllerNode) CheckProto(ctx context.Context, t raftfsm.CommandType) error {
	return n.a.checkProto(ctx, t)
}
func (n controllerNode) CheckHosts(ctx context.Context, cmd *raftfsm.DeployService, role raftfsm.Role) error {
	return n.a.checkHosts(ctx, cmd, role)
}
func (n controllerNode) KickLeader() { n.a.kickLeader() }

// randomHex returns n random bytes in hex: ids the leader puts in commands.
func randomHex(n int) string { return ids.Hex(n) }

// newID returns a fresh id with a readable prefix ("dep-1a2b3c4d5e6f").
func newID(prefix string) string { return ids.New(prefix) }

// now is the leader's clock, the only one commands read.
func (a *Agent) now() time.Time { return time.Now().UTC() }

// NodeID is this node's id.
func (a *Agent) NodeID() string { return a.cfg.NodeID }

// Version is this binary's version.
func (a *Agent) Version() string { return a.cfg.Version }

// View reads the local replica.
func (a *Agent) View(fn func(s *raftfsm.State)) { a.fsm.View(fn) }

// Changed returns a channel closed at the next state change.
func (a *Agent) Changed() <-chan struct{} { return a.fsm.Changed() }

// IsLeader reports whether this node leads.
func (a *Agent) IsLeader() bool { return a.store.IsLeader() }

// Consistent makes local reads reflect every committed write.
func (a *Agent) Consistent(ctx context.Context) error {
	if !a.store.IsLeader() {
		return control.ErrNotLeader
	}
	return a.store.Barrier(ctx)
}

// CatchUp returns nil once this node may serve reads.
func (a *Agent) CatchUp() error { return a.store.CatchUp() }

// ReadIndex confirms the leadership and returns a linearizable read's index.
func (a *Agent) ReadIndex(ctx context.Context) (uint64, error) { return a.store.ReadIndex(ctx) }

// WaitApplied waits until the local state reflects index idx.
func (a *Agent) WaitApplied(ctx context.Context, idx uint64) error {
	return a.store.WaitApplied(ctx, idx)
}

// StaleContact says how stale a local read may be.
func (a *Agent) StaleContact(ctx context.Context) raftfsm.Contact { return a.store.StaleContact(ctx) }

func (n controllerNode) NodeID() string   { return n.a.cfg.NodeID }
func (n controllerNode) CloudReady() bool { return n.a.cloudReady() }
