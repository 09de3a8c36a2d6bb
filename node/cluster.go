package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Cluster describes the leader, the term and every gossip member with its raft role.
func (a *Agent) Cluster(ctx context.Context) (control.ClusterInfo, error) {
	id, api := a.Leader()
	info := control.ClusterInfo{Leader: control.LeaderInfo{ID: id, API: api}, Term: a.store.Term(), Members: []control.MemberInfo{}}
	roles := map[string]string{}
	if servers, err := a.store.Servers(ctx); err == nil {
		for _, s := range servers {
			roles[s.ID] = "nonvoter"
			if s.Voter {
				roles[s.ID] = "voter"
			}
		}
	}
	for _, m := range a.mesh.Members() {
		role := roles[m.ID]
		if role == "" {
			role = "none"
		}
		info.Members = append(info.Members, control.MemberInfo{ID: m.ID, Status: m.Status.String(), Since: m.Since, Raft: role,
			API: m.Meta.API, UI: m.Meta.UI, Edge: m.Meta.Edge, Region: m.Meta.Region, Version: m.Meta.Version})
	}
	slices.SortFunc(info.Members, func(x, y control.MemberInfo) int { return strings.Compare(x.ID, y.ID) })
	return info, nil
}

// AgentLogs returns this agent's recent log lines.
func (a *Agent) AgentLogs(since time.Time, limit int) []control.LogEntry {
	entries := a.ring.Entries(since, limit)
	out := make([]control.LogEntry, len(entries))
	for i, e := range entries {
		out[i] = control.LogEntry{Time: e.Time, Level: e.Level, Message: e.Message, Attrs: e.Attrs}
	}
	return out
}

// AddNodes grows the cluster by count droplets (in region, or round-robin
// over the cluster's regions). It records one creation intent per droplet
// and returns: the leader's cloud duty creates them, under the leadership
// (a node that loses it stops calling DigitalOcean, and the next leader
// carries on from the intents, finding by name what was already created).
// Pending intents also keep the growth duty from adding more meanwhile.
func (a *Agent) AddNodes(ctx context.Context, req control.AddNodesRequest) ([]string, error) {
	if req.Count < 1 || req.Count > 50 {
		return nil, fmt.Errorf("%w: count %d: want 1 to 50", raftfsm.ErrInvalid, req.Count)
	}
	if req.Region != "" {
		if err := raftfsm.ValidateRegion(req.Region); err != nil {
			return nil, err
		}
	}
	if !a.cloudReady() {
		return nil, fmt.Errorf("%w: no DigitalOcean token: add one in the settings (or use `dropmesh local up`)", raftfsm.ErrConflict)
	}
	var (
		st     raftfsm.Settings
		seq    int
		active int
	)
	a.fsm.View(func(s *raftfsm.State) {
		st, seq = s.Settings, nextNodeSeq(s)
		for _, n := range s.Nodes {
			if n.Status != raftfsm.NodeDead {
				active++
			}
		}
	})
	if len(st.Regions) == 0 && req.Region == "" {
		return nil, fmt.Errorf("%w: the cluster has no region; give --region", raftfsm.ErrInvalid)
	}
	want := max(st.DesiredNodes, active) + req.Count
	if _, err := a.apply(ctx, &raftfsm.UpdateSettings{At: a.now(), DesiredNodes: &want}); err != nil {
		return nil, err
	}
	var ids []string
	for i := 0; i < req.Count; i++ {
		seq++
		nodeID := fmt.Sprintf("node-%d", seq)
		region := req.Region
		if region == "" {
			region = st.Regions[(seq-1)%len(st.Regions)]
		}
		params := map[string]string{"node": nodeID, "region": region, "seq": strconv.Itoa(seq)}
		if _, err := a.apply(ctx, &raftfsm.RecordIntent{At: a.now(), Intent: raftfsm.Intent{ID: newID("int"), Kind: raftfsm.IntentCreateDroplet,
			Target: dropletName(st, nodeID), Params: params}}); err != nil {
			return ids, err
		}
		ids = append(ids, nodeID)
	}
	a.kickLeader()
	return ids, nil
}

// RebootNode power-cycles a node's droplet.
func (a *Agent) RebootNode(ctx context.Context, id string) error {
	var n raftfsm.Node
	var found bool
	a.fsm.View(func(s *raftfsm.State) {
		if p, ok := s.Nodes[id]; ok {
			n, found = *p, true
		}
	})
	if !found {
		return fmt.Errorf("node %s: %w", id, raftfsm.ErrNotFound)
	}
	if n.DropletID == 0 || !a.cloudReady() {
		return fmt.Errorf("%w: node %s has no droplet to power-cycle", raftfsm.ErrConflict, id)
	}
	return a.powerCycle(ctx, n, "reboot requested")
}

// memberOf finds a mesh member's status.
func (a *Agent) memberStatus(id string) mesh.Status {
	if m, ok := a.mesh.Member(id); ok {
		return m.Status
	}
	return mesh.StatusLeft
}
