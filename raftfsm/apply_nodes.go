package raftfsm

// The nodes aggregate: the droplets that run agents, their status and pings.

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

func validateHostPort(field, hp string) error {
	if hp == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil || port == "" || host == "" || strings.ContainsAny(hp, " ;{}\"'`$\\\n") {
		return invalidf("%s %q: want host:port", field, hp)
	}
	return nil
}

func validateIP(field, ip string) error {
	if ip != "" && net.ParseIP(ip) == nil {
		return invalidf("%s %q: not an IP address", field, ip)
	}
	return nil
}

func applyUpsertNode(s *State, c *UpsertNode) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	n := c.Node
	if err := ValidateNodeID(n.ID); err != nil {
		return nil, err
	}
	if n.Region != "" {
		if err := ValidateRegion(n.Region); err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"public_ip": n.PublicIP, "private_ip": n.PrivateIP} {
		if err := validateIP(field, v); err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"api": n.API, "ui": n.UI, "edge": n.Edge, "gossip": n.Gossip, "raft": n.Raft} {
		if err := validateHostPort(field, v); err != nil {
			return nil, err
		}
	}
	if len(n.Version) > 64 {
		return nil, invalidf("version: longer than 64 characters")
	}
	cur, ok := s.Nodes[n.ID]
	if !ok {
		cur = &Node{ID: n.ID, Status: NodeActive, StatusSince: c.At, JoinedAt: c.At}
		s.Nodes[n.ID] = cur
		s.event(c.At, EventNodeJoined, SeverityInfo, "node "+n.ID+" joined", func(e *Event) { e.Node = n.ID })
	}
	cur.DropletID, cur.Region = n.DropletID, n.Region
	cur.PublicIP, cur.PrivateIP = n.PublicIP, n.PrivateIP
	cur.API, cur.UI, cur.Edge, cur.Gossip, cur.Raft = n.API, n.UI, n.Edge, n.Gossip, n.Raft
	cur.Version = n.Version
	cur.LastSeen = c.At
	return nil, nil
}

func applySetNodeStatus(s *State, c *SetNodeStatus) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if !c.Status.Valid() {
		return nil, invalidf("node status %q: want active, draining, rebooting or dead", c.Status)
	}
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	if n.Status == c.Status && !c.Reboot {
		return nil, nil
	}
	prev := n.Status
	n.Status, n.StatusReason, n.StatusSince = c.Status, c.Reason, c.At
	kind, sev := EventNodeStatus, SeverityInfo
	msg := fmt.Sprintf("node %s: %s -> %s", c.Node, prev, c.Status)
	switch {
	case c.Reboot:
		n.Reboots++
		n.RebootedAt = c.At
		n.ConsecutiveFailedPings = 0
		kind, sev = EventHealReboot, SeverityWarn
		msg = "power-cycling node " + c.Node
	case c.Status == NodeDead:
		kind, sev = EventNodeLost, SeverityError
	case c.Status == NodeActive && (prev == NodeDead || prev == NodeRebooting):
		kind = EventNodeFound
	}
	if c.Reason != "" {
		msg += ": " + c.Reason
	}
	s.event(c.At, kind, sev, msg, func(e *Event) { e.Node = c.Node })
	return nil, nil
}

func applyRecordPings(s *State, c *RecordPings) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	for _, r := range c.Results {
		n, ok := s.Nodes[r.Node]
		if !ok {
			continue
		}
		if r.OK {
			n.ConsecutiveFailedPings = 0
			n.LastSeen = c.At
		} else {
			n.ConsecutiveFailedPings++
		}
	}
	return nil, nil
}

func applyRemoveNode(s *State, c *RemoveNode) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.Nodes[c.Node]; !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	if left := s.InstancesOn(c.Node); len(left) > 0 {
		return nil, fmt.Errorf("%w: node %s still runs %d instances (%s); drain it first", ErrConflict, c.Node, len(left), left[0])
	}
	delete(s.Nodes, c.Node)
	msg := "node " + c.Node + " removed"
	if c.Reason != "" {
		msg += ": " + c.Reason
	}
	s.event(c.At, EventNodeRemoved, SeverityInfo, msg, func(e *Event) { e.Node = c.Node })
	return nil, nil
}

// InstancesOn returns the sorted ids of the instances placed on node.
func (s *State) InstancesOn(node string) []string {
	var ids []string
	for id, in := range s.Instances {
		if in.Node == node {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
