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
// The validators in names.go are the single source of truth for every name
// that reaches a container, nginx, DNS or a shell; the API, the CLI and the UI
// all call them.
package raftfsm
