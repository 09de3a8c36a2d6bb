package node

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// rejoinEvery is how often an agent that sees no other alive member looks
// for its cluster again.
const rejoinEvery = 5 * time.Second

// rejoinLoop brings an agent that is alone in the gossip back into its
// mesh: a restarted seed (it has no --join), a node whose peers all moved,
// or one the others declared dead while it was cut off. It joins the
// gossip addresses it knows: the nodes of its replica of the state, the
// raft servers it knows (at this agent's gossip port), and --join.
func (a *Agent) rejoinLoop(ctx context.Context) {
	t := time.NewTicker(rejoinEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.aliveOthers() > 0 {
			continue
		}
		addrs := a.knownGossipAddrs(ctx)
		if len(addrs) == 0 {
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, rejoinEvery)
		n, err := a.mesh.Join(jctx, addrs)
		cancel()
		if err != nil {
			a.logger.Debug("rejoin: no member answered", "addrs", addrs, "err", err)
			continue
		}
		a.logger.Info("alone in the gossip: rejoined the mesh", "contacted", n)
	}
}

// aliveOthers counts the alive or suspect members other than this node.
func (a *Agent) aliveOthers() int {
	n := 0
	for _, m := range a.mesh.Members() {
		if m.ID != a.cfg.NodeID && (m.Status == mesh.StatusAlive || m.Status == mesh.StatusSuspect) {
			n++
		}
	}
	return n
}

// knownGossipAddrs are the gossip addresses of the other nodes this agent
// knows of, without duplicates.
func (a *Agent) knownGossipAddrs(ctx context.Context) []string {
	self := a.cfg.addr(a.cfg.GossipPort)
	var out []string
	add := func(addr string) {
		if addr != "" && addr != self && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			if n := s.Nodes[id]; id != a.cfg.NodeID && n.Status != raftfsm.NodeDead {
				add(n.Gossip)
			}
		}
	})
	if servers, err := a.store.Servers(ctx); err == nil {
		for _, srv := range servers {
			if host, _, err := net.SplitHostPort(srv.Address); err == nil && srv.ID != a.cfg.NodeID {
				add(net.JoinHostPort(host, strconv.Itoa(a.cfg.GossipPort)))
			}
		}
	}
	for _, j := range a.cfg.Join {
		add(j)
	}
	return out
}
