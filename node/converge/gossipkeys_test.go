package converge

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestGossipKeysFlag(t *testing.T) {
	if _, err := ParseGossipKeys([]string{strings.Repeat("ab", 32), "zz"}); err == nil {
		t.Fatal("a key that is not hex was accepted")
	}
	if _, err := ParseGossipKeys([]string{strings.Repeat("ab", 31)}); err == nil {
		t.Fatal("a short key was accepted")
	}
	keys, err := ParseGossipKeys([]string{strings.Repeat("ab", 32), strings.Repeat("cd", 32)})
	if err != nil || len(keys) != 2 || keys[0][0] != 0xab {
		t.Fatalf("parsed %v, %v", keys, err)
	}
	if got := EncodeGossipKeys(keys); got[1] != strings.Repeat("cd", 32) {
		t.Fatalf("encoded %v", got)
	}
}

// keyring is a mesh keyring in memory.
type keyring struct {
	mu   sync.Mutex
	keys [][]byte // the primary first
}

func (k *keyring) KeyIDs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []string
	for _, key := range k.keys {
		ids = append(ids, mesh.KeyID(key))
	}
	return ids
}

func (k *keyring) InstallKey(key []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
	return nil
}

func (k *keyring) UseKey(key []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = slices.DeleteFunc(k.keys, func(x []byte) bool { return bytes.Equal(x, key) })
	k.keys = append([][]byte{key}, k.keys...)
	return nil
}

func (k *keyring) RemoveKeyID(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = slices.DeleteFunc(k.keys, func(x []byte) bool { return mesh.KeyID(x) == id })
	return nil
}

// A node follows the state's keyring: it installs the new key beside the
// old, encrypts with it once it is the primary, drops the old one, saves
// its copy and advertises the ids after each change. It commits nothing.
func TestGossipKeysFollowTheState(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{5}, 32))
	sealer, _ := cipher.NewGCM(block)
	old, fresh := bytes.Repeat([]byte{1}, mesh.KeySize), bytes.Repeat([]byte{2}, mesh.KeySize)
	seal := func(k []byte) raftfsm.GossipKey {
		sealed, err := raftfsm.Seal(sealer, raftfsm.GossipKeyLabel(mesh.KeyID(k)), k)
		if err != nil {
			t.Fatal(err)
		}
		return raftfsm.GossipKey{ID: mesh.KeyID(k), Key: sealed}
	}
	fsm := raftfsm.NewFSM(nil)
	var index uint64
	set := func(g raftfsm.GossipKeyring) {
		t.Helper()
		index++
		if _, err := fsm.ApplyCommand(index, &raftfsm.SetGossipKeys{At: time.Now().UTC(), Keyring: g}); err != nil {
			t.Fatal(err)
		}
	}
	ring := &keyring{keys: [][]byte{old}}
	var advertised [][]string
	file := filepath.Join(t.TempDir(), GossipKeysFileName)
	g := &GossipKeys{State: fsm, Mesh: ring, Sealer: sealer, Derived: old, File: file, Logger: slog.New(slog.DiscardHandler),
		Changed: func(_ context.Context, ids []string) error { advertised = append(advertised, ids); return nil }}
	ctx := context.Background()
	o, f := seal(old), seal(fresh)
	started := time.Now().UTC()

	set(raftfsm.GossipKeyring{Keys: []raftfsm.GossipKey{o, f}, Primary: o.ID,
		Rotation: &raftfsm.GossipRotation{NewID: f.ID, Phase: raftfsm.GossipInstall, StartedAt: started}})
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := ring.KeyIDs(); !slices.Equal(ids, []string{o.ID, f.ID}) {
		t.Fatalf("after install: %v", ids)
	}
	set(raftfsm.GossipKeyring{Keys: []raftfsm.GossipKey{o, f}, Primary: f.ID,
		Rotation: &raftfsm.GossipRotation{NewID: f.ID, Phase: raftfsm.GossipUse, StartedAt: started}})
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := ring.KeyIDs(); ids[0] != f.ID {
		t.Fatalf("after use: %v", ids)
	}
	set(raftfsm.GossipKeyring{Keys: []raftfsm.GossipKey{f}, Primary: f.ID})
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := ring.KeyIDs(); !slices.Equal(ids, []string{f.ID}) {
		t.Fatalf("after the rotation: %v", ids)
	}
	if err := g.Sync(ctx); err != nil || len(advertised) != 3 {
		t.Fatalf("advertised %v (%v), want one change per step", advertised, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := ParseGossipKeys(strings.Fields(string(data)))
	if err != nil || len(saved) != 1 || !bytes.Equal(saved[0], fresh) {
		t.Fatalf("saved %v %v", saved, err)
	}
}
