package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/leader/keyring"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Gossip key rotation, cluster-wide and without a restart.
//
// Until the first rotation every agent encrypts gossip with the key derived
// from the cluster secret. A rotation (RotateGossipKey, on the leader) puts
// a new random key, sealed, into the state's keyring in two steps: first
// every agent installs it beside the old one (it decrypts with both, still
// encrypts with the old), then, once every alive member advertises it in
// its metadata, every agent encrypts with it; once every alive member
// does, the old key is removed. Each agent applies the state's keyring to
// its mesh (syncGossipKeys) and keeps a copy in DATA_DIR/gossip-keys, so a
// restart gossips with the current keys before its raft log has caught up.
// A node that joins later gets the keys with its join answer, over TLS
// (never in user data). A member that was down for a whole rotation
// cannot gossip when it comes back, but its raft log brings it the new
// keyring, and from then on it can.

// gossipKeysFile is this node's copy of its gossip keys: hex, one a line,
// the primary first.
func (a *Agent) gossipKeysFile() string {
	return filepath.Join(a.cfg.DataDir, converge.GossipKeysFileName)
}

// startGossipKeys are the keys the mesh starts with: this node's copy, else
// the ones its configuration gives (a droplet made after a rotation), else
// the key derived from the cluster secret.
func (a *Agent) startGossipKeys() ([][]byte, error) {
	data, err := os.ReadFile(a.gossipKeysFile())
	switch {
	case err == nil:
		keys, err := converge.ParseGossipKeys(strings.Fields(string(data)))
		if err != nil {
			return nil, fmt.Errorf("gossip keys in %s: %w", a.gossipKeysFile(), err)
		}
		return keys, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("gossip keys: %w", err)
	}
	if len(a.cfg.GossipKeys) > 0 {
		return a.cfg.GossipKeys, nil
	}
	return [][]byte{a.keys.GossipKey}, nil
}

// runGossipKeys keeps this node's mesh keyring equal to the state's, on
// every node (package converge).
func (a *Agent) runGossipKeys(ctx context.Context) {
	g := &converge.GossipKeys{State: a.fsm, Mesh: a.mesh, Sealer: a.keys.Sealer, Derived: a.keys.GossipKey,
		File: a.gossipKeysFile(), Configured: len(a.cfg.GossipKeys) > 0, Logger: a.logger,
		Changed: func(ctx context.Context, ids []string) error {
			a.setGossipKeyIDs(ids)
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return a.mesh.UpdateMeta(uctx, a.meta())
		}}
	g.Run(ctx)
}

// setGossipKeyIDs records the key ids meta advertises.
func (a *Agent) setGossipKeyIDs(ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gossipKeyIDs = strings.Join(ids, ",")
}

// runGossipRotation is the leader's side of a rotation (package keyring).
func (a *Agent) runGossipRotation(ctx context.Context) {
	keyring.Run(ctx, a, a.mesh, keyring.Config{Logger: a.logger, Now: a.now, Wake: a.wake.Chan(keyring.Name)})
}

// RotateGossipKey starts a rotation to a new random gossip key.
func (a *Agent) RotateGossipKey(ctx context.Context) (control.GossipKeysInfo, error) {
	if !a.store.IsLeader() {
		return control.GossipKeysInfo{}, raftfsm.ErrNotLeader
	}
	var g raftfsm.GossipKeyring
	a.fsm.View(func(s *raftfsm.State) { g = s.Gossip })
	if err := keyring.Busy(g); err != nil {
		return control.GossipKeysInfo{}, err
	}
	derived, err := keyring.Seal(a.keys.Sealer, a.keys.GossipKey)
	if err != nil {
		return control.GossipKeysInfo{}, err
	}
	key := make([]byte, mesh.KeySize)
	if _, err := rand.Read(key); err != nil {
		return control.GossipKeysInfo{}, fmt.Errorf("new gossip key: %w", err)
	}
	fresh, err := keyring.Seal(a.keys.Sealer, key)
	if err != nil {
		return control.GossipKeysInfo{}, err
	}
	now := a.now()
	next, err := keyring.Begin(g, derived, fresh, now)
	if err != nil {
		return control.GossipKeysInfo{}, err
	}
	if _, err := a.apply(ctx, &raftfsm.SetGossipKeys{At: now, Keyring: next}); err != nil {
		return control.GossipKeysInfo{}, err
	}
	a.kickLeader()
	return a.GossipKeys(ctx)
}

// GossipKeys describes the keyring and the keys every member advertises.
func (a *Agent) GossipKeys(context.Context) (control.GossipKeysInfo, error) {
	var g raftfsm.GossipKeyring
	a.fsm.View(func(s *raftfsm.State) { g = s.Gossip })
	info := control.GossipKeysInfo{Primary: g.Primary, Keys: []string{}, Rotation: g.Rotation, Members: []control.GossipMember{}}
	for _, k := range g.Keys {
		info.Keys = append(info.Keys, k.ID)
	}
	if len(g.Keys) == 0 {
		id := mesh.KeyID(a.keys.GossipKey)
		info.Primary, info.Keys, info.Derived = id, []string{id}, true
	}
	if a.mesh != nil {
		for _, m := range a.mesh.Members() {
			ids := m.Meta.KeyIDs()
			if ids == nil {
				ids = []string{}
			}
			info.Members = append(info.Members, control.GossipMember{ID: m.ID, Status: m.Status.String(), Keys: ids})
		}
	}
	return info, nil
}
