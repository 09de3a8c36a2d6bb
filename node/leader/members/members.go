// Package members is the leader's view of who is in the cluster: the
// registrar records every alive gossip member with valid metadata as a node
// of the state, and Voters adapts the raft store for mesh's autopilot,
// which keeps the raft voters in step with the gossip members (voter
// management).
package members

import (
	"context"
	"log/slog"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the registrar needs of the cluster: read the state and
// commit a command (on the leader).
type Source interface {
	View(fn func(*raftfsm.State))
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}

// Gossip is the gossip membership the registrar follows (mesh.Mesh).
type Gossip interface {
	Members() []mesh.Member
	Changed() <-chan struct{}
}

// Name is the registrar duty's name.
const Name = "registrar"

// RunRegistrar records the members as soon as the mesh sees them, and
// every few seconds to catch anything missed, until ctx ends.
func RunRegistrar(ctx context.Context, src Source, g Gossip, now func() time.Time, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		changed := g.Changed()
		if err := Register(ctx, src, g.Members(), now()); err != nil && ctx.Err() == nil {
			log.Warn("leader duty failed", "duty", Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// Register records each alive member whose node in the state is missing or
// has other addresses.
func Register(ctx context.Context, src Source, members []mesh.Member, now time.Time) error {
	for _, m := range members {
		if m.Status != mesh.StatusAlive || m.Meta.ID == "" {
			continue
		}
		node := NodeFromMeta(m.Meta)
		var current *raftfsm.Node
		src.View(func(s *raftfsm.State) {
			if n, ok := s.Nodes[node.ID]; ok {
				c := *n
				current = &c
			}
		})
		if current != nil && sameAddresses(*current, node) {
			continue
		}
		if _, err := src.Apply(ctx, &raftfsm.UpsertNode{At: now, Node: node}); err != nil {
			return err
		}
	}
	return nil
}

// NodeFromMeta is the state's node for what a member advertises.
func NodeFromMeta(m mesh.NodeMeta) raftfsm.Node {
	return raftfsm.Node{ID: m.ID, DropletID: m.DropletID, Region: m.Region, PublicIP: m.PublicIP, PrivateIP: m.PrivateIP,
		API: m.API, UI: m.UI, Edge: m.Edge, Raft: m.Raft, Version: m.Version}
}

func sameAddresses(a, b raftfsm.Node) bool {
	return a.DropletID == b.DropletID && a.Region == b.Region && a.PublicIP == b.PublicIP && a.PrivateIP == b.PrivateIP &&
		a.API == b.API && a.UI == b.UI && a.Edge == b.Edge && a.Raft == b.Raft && a.Version == b.Version
}

// Voters adapts the raft store to what mesh's autopilot needs.
type Voters struct{ Store *raftfsm.Store }

var _ mesh.RaftMembership = Voters{}

// Servers is the raft configuration.
func (r Voters) Servers(ctx context.Context) ([]mesh.RaftServer, error) {
	servers, err := r.Store.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mesh.RaftServer, len(servers))
	for i, s := range servers {
		out[i] = mesh.RaftServer{ID: s.ID, Address: s.Address, Voter: s.Voter}
	}
	return out, nil
}

// AddVoter adds a voter or promotes a non-voter.
func (r Voters) AddVoter(ctx context.Context, id, addr string) error {
	return r.Store.AddVoter(ctx, id, addr)
}

// AddNonvoter adds a non-voter.
func (r Voters) AddNonvoter(ctx context.Context, id, addr string) error {
	return r.Store.AddNonvoter(ctx, id, addr)
}

// DemoteVoter makes a voter a non-voter.
func (r Voters) DemoteVoter(ctx context.Context, id string) error {
	return r.Store.DemoteVoter(ctx, id)
}

// RemoveServer removes a server from the configuration.
func (r Voters) RemoveServer(ctx context.Context, id string) error {
	return r.Store.RemoveServer(ctx, id)
}
