package raftfsm

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSetGossipKeys(t *testing.T) {
	f := newFixture(t)
	aead := testAEAD(t)
	seal := func(id string) Sealed {
		k, err := Seal(aead, GossipKeyLabel(id), []byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	old, nw := GossipKey{ID: "0123456789ab", Key: seal("0123456789ab")}, GossipKey{ID: "ba9876543210", Key: seal("ba9876543210")}
	start := t0.Add(time.Minute)
	install := GossipKeyring{Keys: []GossipKey{old, nw}, Primary: old.ID, Rotation: &GossipRotation{NewID: nw.ID, Phase: GossipInstall, StartedAt: start}}

	for name, bad := range map[string]GossipKeyring{
		"primary not a key":       {Keys: []GossipKey{old}, Primary: nw.ID},
		"bad id":                  {Keys: []GossipKey{{ID: "XYZ", Key: old.Key}}, Primary: "XYZ"},
		"listed twice":            {Keys: []GossipKey{old, old}, Primary: old.ID},
		"plain key":               {Keys: []GossipKey{{ID: old.ID, Key: "plain"}}, Primary: old.ID},
		"too many":                {Keys: []GossipKey{old, nw, {ID: "aaaaaaaaaaaa", Key: old.Key}, {ID: "bbbbbbbbbbbb", Key: old.Key}, {ID: "cccccccccccc", Key: old.Key}}, Primary: old.ID},
		"new key encrypts early":  {Keys: []GossipKey{old, nw}, Primary: nw.ID, Rotation: &GossipRotation{NewID: nw.ID, Phase: GossipInstall, StartedAt: start}},
		"use phase, old primary":  {Keys: []GossipKey{old, nw}, Primary: old.ID, Rotation: &GossipRotation{NewID: nw.ID, Phase: GossipUse, StartedAt: start}},
		"rotation to unknown key": {Keys: []GossipKey{old}, Primary: old.ID, Rotation: &GossipRotation{NewID: nw.ID, Phase: GossipInstall, StartedAt: start}},
		"unknown phase":           {Keys: []GossipKey{old, nw}, Primary: old.ID, Rotation: &GossipRotation{NewID: nw.ID, Phase: "later", StartedAt: start}},
		"primary without keys":    {Primary: old.ID},
	} {
		if err := f.refuse(&SetGossipKeys{At: t0, Keyring: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	f.refuse(&SetGossipKeys{Keyring: install}) // no time stamp

	// The rotation's three steps, each an event.
	events := func() int {
		n := 0
		f.view(func(s *State) {
			for _, e := range s.Events.Items {
				if strings.Contains(e.Message, "gossip key") {
					n++
				}
			}
		})
		return n
	}
	f.must(&SetGossipKeys{At: start, Keyring: install})
	use := install
	use.Primary, use.Rotation = nw.ID, &GossipRotation{NewID: nw.ID, Phase: GossipUse, StartedAt: start}
	f.must(&SetGossipKeys{At: start.Add(time.Second), Keyring: use})
	f.must(&SetGossipKeys{At: start.Add(2 * time.Second), Keyring: GossipKeyring{Keys: []GossipKey{nw}, Primary: nw.ID}})
	f.view(func(s *State) {
		g := s.Gossip
		if g.Primary != nw.ID || len(g.Keys) != 1 || g.Rotation != nil || !g.UpdatedAt.Equal(start.Add(2*time.Second)) {
			t.Fatalf("keyring after the rotation: %+v", g)
		}
		if k, ok := g.Key(nw.ID); !ok || k.Key != nw.Key {
			t.Fatalf("the new key is not in the keyring: %+v", g)
		}
	})
	if n := events(); n != 3 {
		t.Fatalf("%d gossip key events, want one per step", n)
	}
}

// TestREADMEListsEveryCommand keeps the README's state-model section in step
// with the command table.
func TestREADMEListsEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for ty := CmdInvalid + 1; ty < cmdEnd; ty++ {
		if !strings.Contains(readme, "`"+ty.String()+"`") {
			t.Errorf("README.md does not list the command %s", ty)
		}
	}
}
