// Package mesh is dropmesh's membership layer: it wraps hashicorp/memberlist
// (SWIM gossip with Lifeguard) so the rest of dropmesh sees its own typed
// members and events, never memberlist's types, and it holds the leader's
// policy for managing Raft voters from membership.
//
// Main types:
//   - Mesh: one node's view of the cluster. New starts it, Join contacts
//     peers, Members and Member read the view (alive, suspect, dead and left
//     members, each with the time of its last status change), Events streams
//     typed changes, UpdateMeta re-advertises this node's NodeMeta.
//   - NodeMeta: what every agent tells the others about itself (addresses,
//     version, protocol level), JSON in memberlist's 512-byte metadata.
//   - Plan and Autopilot: the leader's pure voter policy and the loop that
//     applies it through the RaftMembership interface declared here, so mesh
//     never imports the raft store.
//
// Gossip is always encrypted (AES-256-GCM, the cluster name as associated data
// and packet label) and is treated as untrusted input: metadata that does not
// decode or validate is logged and the member refused.
//
// memberlist v0.7.0 does not expose a node's state (suspect, dead or left)
// through its public API: Node.State is never filled in, and the event
// delegate only says "join", "update" and "leave". Mesh therefore reads the
// local state table through memberlist's own push/pull protocol, with a small
// private observer (see states.go), every Config.StateInterval and whenever a
// node leaves; that is how EventSuspect is raised and how a graceful leave is
// told apart from a failure.
package mesh
