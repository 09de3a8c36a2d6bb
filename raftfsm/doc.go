// Package raftfsm is dropmesh's replicated state: the state model (cluster
// settings, users, nodes, workspaces, services, instances, health history,
// cloud resources and intents, events), the typed commands that change it, the
// deterministic FSM that applies them, and the Store that runs it under
// hashicorp/raft with raft-boltdb/v2.
//
// Apply is pure: every time stamp and id a command needs travels inside the
// command, so every replica ends in the same state. A command that cannot be
// decoded or is invalid returns an error result and leaves the state untouched.
//
// Raft runs only over mutual TLS 1.3 (transport_tls.go, StoreConfig.TLS);
// raft's in-memory transport is for unit tests. raftfsm knows no CA: node
// gives it TLS configurations and a PeerID check built from node/pki. Every
// connection is bound to the node id its peer's certificate names: a
// dialled server must be the raft server configured at the dialled address;
// an accepted client must be a server of the configuration (or one the
// caller's RaftTLS.Admit names; any node of the cluster while this node has
// no configuration yet), on every request, and come from an address its
// certificate names. On accepted connections, every request's
// RPCHeader.ID must be that node id and its RPCHeader.Addr (and the
// deprecated Leader/Candidate address) the node's configured address, so a
// member cannot speak for another (rpc_guard.go decodes each request's
// header before raft reads the same bytes). What this cannot stop: a member's
// own stolen key, used from its address, is that member until its
// certificate is revoked: from the revocation's commit on, each replica
// refuses its handshakes (node's Revoked check) and closes the connections
// it made before (Store.watchRevocations; Store.Disconnect does it by hand).
//
// The validators in names.go are the single source of truth for every name
// that reaches a container, nginx, DNS or a shell; the API, the CLI and the UI
// all call them.
package raftfsm
