package converge

import (
	"context"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// GossipKeysFileName is the name, in the data dir, of this node's copy of
// its gossip keys: hex, one a line, the primary first. A restart gossips
// with them before its raft log has caught up.
const GossipKeysFileName = "gossip-keys"

// ParseGossipKeys decodes hex gossip keys (the primary first).
func ParseGossipKeys(fields []string) ([][]byte, error) {
	if len(fields) == 0 || len(fields) > raftfsm.MaxGossipKeys {
		return nil, fmt.Errorf("want 1 to %d keys, got %d", raftfsm.MaxGossipKeys, len(fields))
	}
	var keys [][]byte
	for _, f := range fields {
		k, err := hex.DecodeString(f)
		if err != nil || len(k) != mesh.KeySize {
			return nil, fmt.Errorf("a gossip key is %d hex digits", 2*mesh.KeySize)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// EncodeGossipKeys is the hex form ParseGossipKeys reads.
func EncodeGossipKeys(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = hex.EncodeToString(k)
	}
	return out
}

// WantedGossipKeys are the keys keyring g says a node should hold, the
// primary first, opened with sealer: derived (the key derived from the
// cluster secret) while the keyring is empty.
func WantedGossipKeys(g raftfsm.GossipKeyring, sealer cipher.AEAD, derived []byte) ([][]byte, error) {
	if len(g.Keys) == 0 {
		return [][]byte{derived}, nil
	}
	primary, ok := g.Key(g.Primary)
	if !ok {
		return nil, fmt.Errorf("gossip keyring: no primary key %s", g.Primary)
	}
	ordered := []raftfsm.GossipKey{primary}
	for _, k := range g.Keys {
		if k.ID != g.Primary {
			ordered = append(ordered, k)
		}
	}
	var keys [][]byte
	for _, k := range ordered {
		plain, err := raftfsm.Open(sealer, raftfsm.GossipKeyLabel(k.ID), k.Key)
		if err != nil {
			return nil, fmt.Errorf("gossip key %s: %w", k.ID, err)
		}
		if len(plain) != mesh.KeySize || mesh.KeyID(plain) != k.ID {
			return nil, fmt.Errorf("gossip key %s: does not match its id", k.ID)
		}
		keys = append(keys, plain)
	}
	return keys, nil
}

// Keyring is the gossip keyring of this node's mesh (mesh.Mesh).
type Keyring interface {
	KeyIDs() []string
	InstallKey(k []byte) error
	UseKey(k []byte) error
	RemoveKeyID(id string) error
}

// GossipKeys keeps this node's mesh keyring equal to the state's: install
// what is new, switch the primary, remove what is gone (in that order, so
// this node never stops understanding its peers), and keep the copy in
// File.
type GossipKeys struct {
	State  State
	Mesh   Keyring
	Sealer cipher.AEAD
	// Derived is the key derived from the cluster secret.
	Derived []byte
	// File is this node's copy (DATA_DIR/GossipKeysFileName).
	File string
	// Configured: the node was started with keys of its own (a droplet made
	// after a rotation), kept while its replica knows no keyring.
	Configured bool
	// Changed is told the key ids after a change, the primary first (the
	// agent advertises them in its gossip metadata).
	Changed func(ctx context.Context, ids []string) error
	Logger  *slog.Logger
}

// Run syncs on every state change, and every 30 s, until ctx ends.
func (g *GossipKeys) Run(ctx context.Context) {
	for {
		changed := g.State.Changed()
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			g.Logger.Warn("gossip keys", "err", err)
		}
		t := time.NewTimer(30 * time.Second)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// Sync makes the mesh keyring equal to the state's once.
func (g *GossipKeys) Sync(ctx context.Context) error {
	var ring raftfsm.GossipKeyring
	g.State.View(func(s *raftfsm.State) { ring = s.Gossip })
	if len(ring.Keys) == 0 {
		// Nothing rotated yet, in the state as this node has applied it: a
		// node still replaying its log keeps the keys it started with.
		if _, err := os.Stat(g.File); err == nil || g.Configured {
			return nil
		}
	}
	want, err := WantedGossipKeys(ring, g.Sealer, g.Derived)
	if err != nil {
		return err
	}
	m := g.Mesh
	have := m.KeyIDs()
	changed := false
	for _, k := range want {
		if !slices.Contains(have, mesh.KeyID(k)) {
			if err := m.InstallKey(k); err != nil {
				return err
			}
			changed = true
		}
	}
	if have[0] != mesh.KeyID(want[0]) {
		if err := m.UseKey(want[0]); err != nil {
			return err
		}
		changed = true
	}
	wantIDs := make([]string, len(want))
	for i, k := range want {
		wantIDs[i] = mesh.KeyID(k)
	}
	for _, id := range have {
		if !slices.Contains(wantIDs, id) {
			if err := m.RemoveKeyID(id); err != nil {
				return err
			}
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := atomicfile.Write(g.File, []byte(strings.Join(EncodeGossipKeys(want), "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("save gossip keys: %w", err)
	}
	g.Logger.Info("gossip keys changed", "primary", wantIDs[0], "keys", wantIDs)
	return g.Changed(ctx, m.KeyIDs())
}
