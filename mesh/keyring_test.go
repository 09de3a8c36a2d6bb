package mesh

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKeyRotation: install a new key everywhere, use it, remove the old one:
// the cluster stays together, a node with only the old key can no longer
// join, one with the new key can.
func TestKeyRotation(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	logs := make([]*eventLog, len(c.meshes))
	for i, m := range c.meshes {
		logs[i] = recordEvents(m)
	}
	oldKey, newKey := testKey(1), testKey(2)
	for _, m := range c.meshes {
		if err := m.InstallKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.meshes {
		if err := m.UseKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.meshes {
		if ids := m.KeyIDs(); len(ids) != 2 || ids[0] != KeyID(newKey) || ids[1] != KeyID(oldKey) {
			t.Fatalf("%s's key ids %v: want the new key first, then the old", m.cfg.NodeID, ids)
		}
		if err := m.RemoveKey(oldKey); err != nil {
			t.Fatal(err)
		}
		if ids := m.KeyIDs(); len(ids) != 1 || ids[0] != KeyID(newKey) {
			t.Fatalf("%s's key ids after the removal: %v", m.cfg.NodeID, ids)
		}
	}
	// Together: everyone still sees everyone alive, and fresh gossip (a
	// metadata update, sent under the new key only) reaches everyone.
	c.waitAllAlive(10 * time.Second)
	meta := c.cfgs[2].Meta
	meta.Version = "rotated"
	uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ucancel()
	if err := c.meshes[2].UpdateMeta(uctx, meta); err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		waitFor(t, 10*time.Second, func() bool {
			return l.has(EventUpdate, "n2", func(ev Event) bool { return ev.Member.Meta.Version == "rotated" })
		}, "%s to receive the update sent under the new key", c.meshes[i].cfg.NodeID)
	}

	oldCfg := testConfig(t, "old-key", nodeIP(3, 10))
	oldCfg.Keys = [][]byte{oldKey}
	old := startMesh(t, oldCfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := old.Join(ctx, []string{c.meshes[0].self}); err == nil {
		t.Fatal("a node with only the old key joined")
	}
	if knows(c.meshes[0], "old-key") {
		t.Fatal("cluster lists the old-key node")
	}

	newCfg := testConfig(t, "new-key", nodeIP(3, 11))
	newCfg.Keys = [][]byte{newKey}
	nk := startMesh(t, newCfg)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := nk.Join(ctx2, []string{c.meshes[0].self}); err != nil {
		t.Fatalf("a node with the new key cannot join: %v", err)
	}
	waitStatus(t, c.meshes, "new-key", StatusAlive, 5*time.Second)

	// Bad key operations change nothing.
	m := c.meshes[0]
	if err := m.InstallKey([]byte("short")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("InstallKey(short) = %v, want ErrInvalidConfig", err)
	}
	if err := m.UseKey(testKey(7)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("UseKey(unknown) = %v, want ErrUnknownKey", err)
	}
	if err := m.RemoveKey(testKey(7)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("RemoveKey(unknown) = %v, want ErrUnknownKey", err)
	}
	if err := m.RemoveKey(newKey); !errors.Is(err, ErrPrimaryKey) {
		t.Errorf("RemoveKey(primary) = %v, want ErrPrimaryKey", err)
	}
	if keys := m.keyring.GetKeys(); len(keys) != 1 || string(keys[0]) != string(newKey) {
		t.Errorf("keyring changed by refused operations: %d keys", len(keys))
	}
}
