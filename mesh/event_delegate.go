package mesh

import "github.com/hashicorp/memberlist"

var _ memberlist.EventDelegate = (*eventDelegate)(nil)

// eventDelegate forwards memberlist's join, update and leave notifications
// to the Mesh. memberlist calls it with its node lock held, so the handlers
// only touch Mesh's own state and never call back into memberlist.
type eventDelegate struct{ m *Mesh }

// NotifyJoin: a node became alive (new, or back from dead or left).
func (e *eventDelegate) NotifyJoin(n *memberlist.Node) { e.m.handleJoin(n) }

// NotifyUpdate: an alive node changed its metadata.
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.m.handleUpdate(n) }

// NotifyLeave: a node is dead or left. memberlist v0.7.0 does not fill in
// n.State, so Mesh resolves which one with a state read (states.go).
func (e *eventDelegate) NotifyLeave(n *memberlist.Node) { e.m.handleLeave(n) }
