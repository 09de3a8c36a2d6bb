// Package keyring is the leader's side of a gossip key rotation: Begin
// plans a rotation's first step (a new key installed beside the old ones),
// and the duty (Run, Advance) takes the next step once every alive member
// advertises, in its gossip metadata, that it has taken the one before:
// install, then use as primary, then drop the old keys. Each node applying
// the keyring to its own mesh is per-node work, outside the leader.
package keyring

import (
	"context"
	"crypto/cipher"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/leader"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the duty needs of the cluster: read the state, wait for a
// change, commit a command (on the leader).
type Source interface {
	View(fn func(*raftfsm.State))
	Changed() <-chan struct{}
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}

// Members are the gossip members as this node sees them (mesh.Mesh).
type Members interface {
	Members() []mesh.Member
}

// Name is the duty's name (logs, wake-up channel).
const Name = "gossip-rotation"

// Config tunes the duty.
type Config struct {
	Logger *slog.Logger
	// Now is the clock (commands carry its time stamps).
	Now func() time.Time
	// Wake is the duty's own wake-up channel (leader.Wakeups.Chan).
	Wake <-chan struct{}
	// Interval is the longest time between two looks at the members
	// (default 500 ms: metadata changes are not state changes).
	Interval time.Duration
}

// Run advances a rotation in progress until ctx ends.
func Run(ctx context.Context, src Source, members Members, cfg Config) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	leader.Every{Name: Name, Interval: cfg.Interval, Changed: src.Changed, Wake: cfg.Wake, Logger: cfg.Logger}.
		Run(ctx, func(ctx context.Context) error { return Advance(ctx, src, members, cfg.Now()) })
}

// Advance takes a rotation's next step when every alive member has taken
// the one before; a member that is down catches up through its raft log.
func Advance(ctx context.Context, src Source, members Members, now time.Time) error {
	var g raftfsm.GossipKeyring
	src.View(func(s *raftfsm.State) { g = s.Gossip })
	r := g.Rotation
	if r == nil {
		return nil
	}
	for _, m := range members.Members() {
		if m.Status != mesh.StatusAlive {
			continue
		}
		ids := m.Meta.KeyIDs()
		switch {
		case r.Phase == raftfsm.GossipInstall && !slices.Contains(ids, r.NewID):
			return nil
		case r.Phase == raftfsm.GossipUse && (len(ids) == 0 || ids[0] != r.NewID):
			return nil
		}
	}
	next := g
	next.Keys = slices.Clone(g.Keys)
	switch r.Phase {
	case raftfsm.GossipInstall:
		next.Primary = r.NewID
		next.Rotation = &raftfsm.GossipRotation{NewID: r.NewID, Phase: raftfsm.GossipUse, StartedAt: r.StartedAt}
	case raftfsm.GossipUse:
		newKey, _ := g.Key(r.NewID)
		next.Keys, next.Rotation = []raftfsm.GossipKey{newKey}, nil
	}
	_, err := src.Apply(ctx, &raftfsm.SetGossipKeys{At: now, Keyring: next})
	return err
}

// Begin is the keyring that starts a rotation from g to the key fresh
// (sealed): fresh is installed beside the current keys, the primary stays.
// A keyring still empty starts from derived, the key derived from the
// cluster secret (sealed). It refuses while a rotation is in progress.
func Begin(g raftfsm.GossipKeyring, derived, fresh raftfsm.GossipKey, now time.Time) (raftfsm.GossipKeyring, error) {
	if err := Busy(g); err != nil {
		return g, err
	}
	next := g
	next.Keys = slices.Clone(g.Keys)
	if len(next.Keys) == 0 {
		next.Keys, next.Primary = []raftfsm.GossipKey{derived}, derived.ID
	}
	next.Keys = append(next.Keys, fresh)
	next.Rotation = &raftfsm.GossipRotation{NewID: fresh.ID, Phase: raftfsm.GossipInstall, StartedAt: now}
	return next, nil
}

// Busy refuses a new rotation while one is in progress (ErrConflict).
func Busy(g raftfsm.GossipKeyring) error {
	if g.Rotation != nil {
		return fmt.Errorf("%w: a gossip key rotation (to %s, %s phase) is in progress", raftfsm.ErrConflict, g.Rotation.NewID, g.Rotation.Phase)
	}
	return nil
}

// Seal seals a gossip key for the state's keyring.
func Seal(sealer cipher.AEAD, k []byte) (raftfsm.GossipKey, error) {
	id := mesh.KeyID(k)
	sealed, err := raftfsm.Seal(sealer, raftfsm.GossipKeyLabel(id), k)
	if err != nil {
		return raftfsm.GossipKey{}, fmt.Errorf("seal gossip key %s: %w", id, err)
	}
	return raftfsm.GossipKey{ID: id, Key: sealed}, nil
}
