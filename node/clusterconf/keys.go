package clusterconf

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dropmesh/dropmesh/node/backup"
)

// ClusterSecret is the random 32 bytes the seed node makes at bootstrap.
// Every other key is derived from it; it travels to new droplets in their
// cloud-init user data and lives in the data dir with mode 0600.
type ClusterSecret [32]byte

// NewClusterSecret makes a fresh random secret.
func NewClusterSecret() (ClusterSecret, error) {
	var s ClusterSecret
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("make cluster secret: %w", err)
	}
	return s, nil
}

// ParseClusterSecret reads the 64-hex-digit form.
func ParseClusterSecret(text string) (ClusterSecret, error) {
	var s ClusterSecret
	b, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(b) != len(s) {
		return s, errors.New("cluster secret: want 64 hex digits")
	}
	copy(s[:], b)
	return s, nil
}

// String is the hex form written to files and user data.
func (s ClusterSecret) String() string { return hex.EncodeToString(s[:]) }

// ReadClusterSecretFile reads a secret file.
func ReadClusterSecretFile(path string) (ClusterSecret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ClusterSecret{}, fmt.Errorf("read cluster secret %s: %w", path, err)
	}
	s, err := ParseClusterSecret(string(b))
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// WriteClusterSecretFile writes a secret file with mode 0600.
func WriteClusterSecretFile(path string, s ClusterSecret) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write cluster secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(s.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write cluster secret %s: %w", path, err)
	}
	return nil
}

// Keys are the keys derived from the cluster secret, one per purpose, so a
// leak of one (say the API key in a script) reveals nothing of the others.
type Keys struct {
	// APIKey authenticates every agent API call (hex, 64 characters).
	APIKey string
	// GossipKey encrypts memberlist traffic (AES-256-GCM).
	GossipKey []byte
	// SessionKey signs the web UI's session cookies and CSRF tokens.
	SessionKey []byte
	// Sealer seals secrets before they enter the raft log.
	Sealer cipher.AEAD
	// Backup encrypts and authenticates the leader's backups
	// (backup.DeriveKey, HKDF label backup.KeyLabel).
	Backup cipher.AEAD
}

// HKDF labels: changing one rotates that key in every cluster.
const (
	labelAPI     = "dropmesh/v1/agent-api-key"
	labelGossip  = "dropmesh/v1/gossip-key"
	labelSession = "dropmesh/v1/ui-session-key"
	labelSeal    = "dropmesh/v1/state-seal-key"
)

// DeriveKeys derives every key of the cluster from its secret (HKDF-SHA256
// with a distinct label each).
func DeriveKeys(s ClusterSecret) (Keys, error) {
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, s[:], nil, label, 32)
	}
	api, err := derive(labelAPI)
	if err != nil {
		return Keys{}, fmt.Errorf("derive api key: %w", err)
	}
	gossip, err := derive(labelGossip)
	if err != nil {
		return Keys{}, fmt.Errorf("derive gossip key: %w", err)
	}
	session, err := derive(labelSession)
	if err != nil {
		return Keys{}, fmt.Errorf("derive session key: %w", err)
	}
	seal, err := derive(labelSeal)
	if err != nil {
		return Keys{}, fmt.Errorf("derive seal key: %w", err)
	}
	block, err := aes.NewCipher(seal)
	if err != nil {
		return Keys{}, fmt.Errorf("seal cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Keys{}, fmt.Errorf("seal cipher: %w", err)
	}
	bk, err := backup.DeriveKey(s[:])
	if err != nil {
		return Keys{}, err
	}
	return Keys{APIKey: hex.EncodeToString(api), GossipKey: gossip, SessionKey: session, Sealer: aead, Backup: bk}, nil
}
