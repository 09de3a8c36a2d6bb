package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/leader/leadertest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// members are gossip members whose advertised keys the test sets.
type members struct {
	mu sync.Mutex
	m  []mesh.Member
}

func (x *members) Members() []mesh.Member { x.mu.Lock(); defer x.mu.Unlock(); return x.m }

func (x *members) advertise(status mesh.Status, keys ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.m = nil
	for i, id := range []string{"node-1", "node-2"} {
		st := mesh.StatusAlive
		if i == 1 {
			st = status
		}
		x.m = append(x.m, mesh.Member{ID: id, Status: st, Meta: mesh.NodeMeta{ID: id, Keys: strings.Join(keys, ",")}})
	}
}

func sealer(t *testing.T) cipher.AEAD {
	block, err := aes.NewCipher(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// A rotation moves install -> use -> done, each step only once every alive
// member advertises the one before; a dead member does not hold it up.
func TestRotationSteps(t *testing.T) {
	st := leadertest.New()
	aead := sealer(t)
	derived, err := Seal(aead, bytes.Repeat([]byte{1}, mesh.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Seal(aead, bytes.Repeat([]byte{2}, mesh.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	var g raftfsm.GossipKeyring
	next, err := Begin(g, derived, fresh, t0)
	if err != nil {
		t.Fatal(err)
	}
	st.Must(t, &raftfsm.SetGossipKeys{At: t0, Keyring: next}) // applied 1
	gossip := func() (g raftfsm.GossipKeyring) { st.View(func(s *raftfsm.State) { g = s.Gossip }); return g }
	if _, err := Begin(gossip(), derived, fresh, t0); !errors.Is(err, raftfsm.ErrConflict) {
		t.Fatalf("a second rotation began: %v", err)
	}
	ctx := context.Background()
	m := &members{}

	m.advertise(mesh.StatusAlive, derived.ID) // nobody has the new key yet
	if err := Advance(ctx, st, m, t0); err != nil || len(st.Applied()) != 1 {
		t.Fatalf("advanced before every member installed the key: %v %v", err, st.Applied())
	}
	m.advertise(mesh.StatusDead, derived.ID, fresh.ID) // node-2 is dead: it does not count
	if err := Advance(ctx, st, m, t0); err != nil {
		t.Fatal(err)
	}
	if g := gossip(); g.Rotation == nil || g.Rotation.Phase != raftfsm.GossipUse || g.Primary != fresh.ID {
		t.Fatalf("after install: %+v", g)
	}
	if err := Advance(ctx, st, m, t0); err != nil || len(st.Applied()) != 2 {
		t.Fatalf("advanced before the members used the new key: %v", err)
	}
	m.advertise(mesh.StatusAlive, fresh.ID, derived.ID)
	if err := Advance(ctx, st, m, t0); err != nil {
		t.Fatal(err)
	}
	if g := gossip(); g.Rotation != nil || len(g.Keys) != 1 || g.Keys[0].ID != fresh.ID {
		t.Fatalf("after use: %+v", g)
	}
}
