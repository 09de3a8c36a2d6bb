// Package leader is the leadership loop of a dropmesh agent: it starts the
// leader's duties when this node gains raft leadership (after a barrier and
// the cluster's one-time initialisation) and stops them when it loses it, the
// way Nomad's establishLeadership and revokeLeadership do.
//
// Each duty lives in a package of its own below this one or beside it
// (node/leader/rollout, node/notify, node/backup...) and is built from a
// narrow interface: read the state, wait for a change, commit a command. A
// duty wakes on its own channel (Wakeups), so a kick reaches every duty
// rather than one arbitrary reader.
package leader
