package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Gossip key rotation on the local keyring, without a restart. memberlist's
// Keyring is safe for concurrent use and shared with the state reader, so a
// change applies to both at once.

// InstallKey adds a gossip key to the local keyring; it decrypts at once and
// can be made primary with UseKey. Rotation: install the new key on every
// node, UseKey it on every node, then RemoveKey the old one everywhere.
func (m *Mesh) InstallKey(k []byte) error {
	if len(k) != KeySize {
		return fmt.Errorf("%w: gossip key is %d bytes, want %d", ErrInvalidConfig, len(k), KeySize)
	}
	if err := m.keyring.AddKey(k); err != nil {
		return fmt.Errorf("mesh: install gossip key: %w", err)
	}
	return nil
}

// ErrUnknownKey is returned by UseKey and RemoveKey for a key that is not
// installed.
var ErrUnknownKey = errors.New("mesh: gossip key not installed")

// ErrPrimaryKey is returned by RemoveKey for the key in use.
var ErrPrimaryKey = errors.New("mesh: cannot remove the primary gossip key")

// UseKey makes an installed key the one that encrypts.
func (m *Mesh) UseKey(k []byte) error {
	if !m.hasKey(k) {
		return ErrUnknownKey
	}
	if err := m.keyring.UseKey(k); err != nil {
		return fmt.Errorf("mesh: use gossip key: %w", err)
	}
	return nil
}

// RemoveKey removes an installed key that is not the primary one.
func (m *Mesh) RemoveKey(k []byte) error {
	if !m.hasKey(k) {
		return ErrUnknownKey
	}
	if slices.Equal(m.keyring.GetPrimaryKey(), k) {
		return ErrPrimaryKey
	}
	if err := m.keyring.RemoveKey(k); err != nil {
		return fmt.Errorf("mesh: remove gossip key: %w", err)
	}
	return nil
}

func (m *Mesh) hasKey(k []byte) bool {
	return slices.ContainsFunc(m.keyring.GetKeys(), func(x []byte) bool { return slices.Equal(x, k) })
}

// KeyID names a gossip key without revealing it: the first 12 hex digits
// of its SHA-256. Agents advertise the ids of their keys (NodeMeta.Keys).
func KeyID(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:6])
}

// KeyIDs are the ids of the installed keys, the primary one first.
func (m *Mesh) KeyIDs() []string {
	primary := m.keyring.GetPrimaryKey()
	ids := []string{KeyID(primary)}
	for _, k := range m.keyring.GetKeys() {
		if !slices.Equal(k, primary) {
			ids = append(ids, KeyID(k))
		}
	}
	return ids
}

// RemoveKeyID removes the installed key whose KeyID is id (not the primary).
func (m *Mesh) RemoveKeyID(id string) error {
	for _, k := range m.keyring.GetKeys() {
		if KeyID(k) == id {
			return m.RemoveKey(k)
		}
	}
	return ErrUnknownKey
}
