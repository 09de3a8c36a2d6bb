// Package clusterconf holds what every dropmesh process agrees on without
// running an agent: the default ports, the layout of a node's data dir, the
// cluster secret and the keys derived from it. The agent (package node), the
// local mode and the bootstrap code share it, so neither of the latter needs
// to import the agent.
package clusterconf

// Default ports (agent API, gossip, raft, UI; the handbook's picture shows them).
const (
	DefaultAPIPort    = 9999
	DefaultGossipPort = 7946
	DefaultRaftPort   = 7947
	DefaultUIPort     = 8080
)

// TLSDir is the directory of a node's credentials inside its data dir.
const TLSDir = "tls"
