package node

import (
	"context"
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// PeerAgentLogs returns a node's own recent log lines: this agent's from its
// ring, another's from GET /v1/agent/logs on that node's API (the UI's admin
// page shows any agent's log through the leader).
func (a *Agent) PeerAgentLogs(ctx context.Context, nodeID string, since time.Time, limit int) ([]control.LogEntry, error) {
	if nodeID == a.cfg.NodeID {
		return a.AgentLogs(since, limit), nil
	}
	var api string
	a.fsm.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes[nodeID]; ok {
			api = n.API
		}
	})
	if api == "" {
		return nil, fmt.Errorf("node %s: %w", nodeID, raftfsm.ErrNotFound)
	}
	c, err := a.peers.to(api)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, err)
	}
	entries, err := c.AgentLogs(ctx, "", since, limit)
	if err != nil {
		return nil, fmt.Errorf("the agent log of node %s: %w", nodeID, err)
	}
	return entries, nil
}
