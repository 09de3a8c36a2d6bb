package raftfsm

import (
	"fmt"
	"regexp"
	"time"
)

// GossipKeyring is the cluster's gossip keys once they have been rotated
// away from the one derived from the cluster secret (empty until then: every
// agent uses the derived key). Every agent installs all of Keys and
// encrypts with Primary; a Rotation moves the cluster to a new key in two
// steps the leader takes once every member has done the one before.
type GossipKeyring struct {
	Keys     []GossipKey     `json:"keys,omitempty"`
	Primary  string          `json:"primary,omitempty"`
	Rotation *GossipRotation `json:"rotation,omitempty"`
	// UpdatedAt is when the keyring last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// GossipKey is one gossip key: its id (mesh.KeyID, a short hash) and the
// key itself, sealed under GossipKeyLabel(ID).
type GossipKey struct {
	ID  string `json:"id"`
	Key Sealed `json:"key"`
}

// GossipRotation is a rotation in progress.
type GossipRotation struct {
	// NewID is the key being rotated to.
	NewID string `json:"new_id"`
	// Phase is GossipInstall (every agent adds NewID; the old key still
	// encrypts) or GossipUse (NewID encrypts everywhere; the old one still
	// decrypts). When every agent uses NewID, the old key is removed and
	// the rotation ends.
	Phase     string    `json:"phase"`
	StartedAt time.Time `json:"started_at"`
}

// Gossip rotation phases.
const (
	GossipInstall = "install"
	GossipUse     = "use"
)

// MaxGossipKeys bounds the keyring (memberlist tries every key on every
// packet it cannot decrypt with the first).
const MaxGossipKeys = 4

// gossipKeyIDPattern is mesh.KeyID's shape: 12 hex digits.
var gossipKeyIDPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// GossipKeyLabel is the associated data of a sealed gossip key, so it
// cannot pass for another key's.
func GossipKeyLabel(id string) string { return "gossip_key:" + id }

// Key returns the key with id, and whether it is in the keyring.
func (k GossipKeyring) Key(id string) (GossipKey, bool) {
	for _, g := range k.Keys {
		if g.ID == id {
			return g, true
		}
	}
	return GossipKey{}, false
}

func (k GossipKeyring) validate() error {
	if len(k.Keys) == 0 {
		if k.Primary != "" || k.Rotation != nil {
			return invalidf("gossip keyring: a primary or a rotation without keys")
		}
		return nil
	}
	if len(k.Keys) > MaxGossipKeys {
		return invalidf("gossip keyring: %d keys, at most %d", len(k.Keys), MaxGossipKeys)
	}
	seen := map[string]bool{}
	for _, g := range k.Keys {
		if !gossipKeyIDPattern.MatchString(g.ID) {
			return invalidf("gossip key id %q: want 12 hex digits", g.ID)
		}
		if seen[g.ID] {
			return invalidf("gossip key %s listed twice", g.ID)
		}
		seen[g.ID] = true
		if !g.Key.Valid() {
			return invalidf("gossip key %s is not sealed", g.ID)
		}
	}
	if !seen[k.Primary] {
		return invalidf("gossip keyring: primary %q is not one of its keys", k.Primary)
	}
	if r := k.Rotation; r != nil {
		if !seen[r.NewID] {
			return invalidf("gossip rotation to %q: not one of the keys", r.NewID)
		}
		switch r.Phase {
		case GossipInstall:
			if k.Primary == r.NewID {
				return invalidf("gossip rotation: the new key cannot encrypt while it is being installed")
			}
		case GossipUse:
			if k.Primary != r.NewID {
				return invalidf("gossip rotation: in the use phase the new key is the primary")
			}
		default:
			return invalidf("gossip rotation phase %q: want %s or %s", r.Phase, GossipInstall, GossipUse)
		}
		if r.StartedAt.IsZero() {
			return invalidf("gossip rotation: no start time")
		}
	}
	return nil
}

func applySetGossipKeys(s *State, c *SetGossipKeys) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := c.Keyring.validate(); err != nil {
		return nil, err
	}
	prev := s.Gossip
	next := c.Keyring
	next.Keys = append([]GossipKey(nil), c.Keyring.Keys...)
	if c.Keyring.Rotation != nil {
		r := *c.Keyring.Rotation
		next.Rotation = &r
	}
	next.UpdatedAt = c.At
	s.Gossip = next
	switch {
	case next.Rotation != nil && (prev.Rotation == nil || prev.Rotation.NewID != next.Rotation.NewID):
		s.event(c.At, EventCluster, SeverityInfo, fmt.Sprintf("gossip key rotation to %s started: every agent installs it", next.Rotation.NewID), nil)
	case next.Rotation != nil && next.Rotation.Phase == GossipUse && prev.Rotation != nil && prev.Rotation.Phase == GossipInstall:
		s.event(c.At, EventCluster, SeverityInfo, fmt.Sprintf("gossip key %s installed everywhere: it now encrypts", next.Rotation.NewID), nil)
	case next.Rotation == nil && prev.Rotation != nil:
		s.event(c.At, EventCluster, SeverityInfo, fmt.Sprintf("gossip key rotated to %s; the old keys are removed", next.Primary), nil)
	}
	return nil, nil
}
