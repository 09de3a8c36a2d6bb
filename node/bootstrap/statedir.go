package bootstrap

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/node/bootclaim"
)

// Files in a state dir. Every one is private to the user (mode 0600): the
// API key opens the cluster. The cluster secret never leaves the seed.
const (
	// BootstrapTokenFile holds the seed's one-time bootstrap token (64 hex
	// digits) until the seed has been claimed with it.
	BootstrapTokenFile = "bootstrap-token"
	// APIKeyFile holds the API key the seed handed over when it was claimed.
	APIKeyFile = "api-key"
	// CACertFile holds the cluster CA's certificate the seed proved, when it
	// has one (DROPMESH_CACERT in the env file).
	CACertFile = "ca.pem"
	// AdminPasswordFile holds the password of the UI user admin.
	AdminPasswordFile = "admin-password"
	// EnvFile holds `export DROPMESH_ADDR=... DROPMESH_API_KEY=...` lines.
	EnvFile = "env"
	// KnownHostsFile pins the builder droplets' SSH host keys.
	KnownHostsFile = "known_hosts"
	// RecordFile is what the bootstrap knows of its cluster (Record).
	RecordFile = "cluster.json"
	// BuilderKeyFile holds the builder's private SSH key during a build.
	BuilderKeyFile = "builder_ed25519"
)

// StateDir is the local directory of one cluster's bootstrap (by default
// ~/.config/dropmesh/CLUSTER, mode 0700): what the CLI needs to talk to the
// cluster, and what a second run needs to resume the first.
type StateDir struct {
	// Path is the directory.
	Path string
}

// DefaultStateDir is ~/.config/dropmesh/NAME (the user's config dir).
func DefaultStateDir(name string) (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config dir for the state (give --state-dir): %w", err)
	}
	return filepath.Join(base, "dropmesh", name), nil
}

// OpenStateDir makes the directory (mode 0700) if needed.
func OpenStateDir(path string) (*StateDir, error) {
	if path == "" {
		return nil, errors.New("state dir: no path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("state dir %s: not a directory", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o700); err != nil {
			return nil, fmt.Errorf("state dir %s: make it private: %w", path, err)
		}
	}
	return &StateDir{Path: path}, nil
}

// File returns the path of a file in the state dir.
func (d *StateDir) File(name string) string { return filepath.Join(d.Path, name) }

// Record is what the bootstrap knows of its cluster, kept in cluster.json
// (no secrets). A re-run checks its options against it.
type Record struct {
	Name          string    `json:"name"`
	ClusterID     string    `json:"cluster_id"`
	Domain        string    `json:"domain"`
	UIHost        string    `json:"ui_host"`
	Regions       []string  `json:"regions"`
	Size          string    `json:"size"`
	Nodes         int       `json:"nodes"`
	Tag           string    `json:"tag"`
	Snapshot      string    `json:"snapshot,omitempty"`
	SnapshotID    int       `json:"snapshot_id,omitempty"`
	VPCID         string    `json:"vpc_id,omitempty"`
	FirewallID    string    `json:"firewall_id,omitempty"`
	SeedDropletID int       `json:"seed_droplet_id,omitempty"`
	SeedPublicIP  string    `json:"seed_public_ip,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// LoadRecord reads cluster.json; ok is false when there is none yet.
func (d *StateDir) LoadRecord() (rec Record, ok bool, err error) {
	data, err := os.ReadFile(d.File(RecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read %s: %w", d.File(RecordFile), err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", d.File(RecordFile), err)
	}
	return rec, true, nil
}

// SaveRecord writes cluster.json.
func (d *StateDir) SaveRecord(rec Record) error {
	rec.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster record: %w", err)
	}
	return atomicfile.Write(d.File(RecordFile), append(data, '\n'), 0o600)
}

// BootstrapToken reads the seed's one-time bootstrap token, or makes and
// keeps one.
func (d *StateDir) BootstrapToken() (string, error) {
	path := d.File(BootstrapTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if err := bootclaim.CheckHex("bootstrap token", tok); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return tok, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read bootstrap token: %w", err)
	}
	tok, err := bootclaim.NewToken()
	if err != nil {
		return "", err
	}
	return tok, atomicfile.Write(path, []byte(tok+"\n"), 0o600)
}

// APIKey reads the API key of a claimed seed; ok is false before the claim.
func (d *StateDir) APIKey() (key string, ok bool, err error) {
	b, err := os.ReadFile(d.File(APIKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read API key: %w", err)
	}
	key = strings.TrimSpace(string(b))
	if key == "" {
		return "", false, fmt.Errorf("%s is empty", d.File(APIKeyFile))
	}
	return key, true, nil
}

// SaveClaim keeps what the claimed seed handed over: the API key and, when
// it has one, the CA certificate. The bootstrap token is used up and goes.
func (d *StateDir) SaveClaim(apiKey, caCert string) error {
	if caCert != "" {
		if err := atomicfile.Write(d.File(CACertFile), []byte(caCert), 0o600); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(d.File(APIKeyFile), []byte(apiKey+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Remove(d.File(BootstrapTokenFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the used bootstrap token: %w", err)
	}
	return nil
}

// AdminPassword reads the admin's password, or makes and keeps one.
func (d *StateDir) AdminPassword() (string, error) {
	path := d.File(AdminPasswordFile)
	if b, err := os.ReadFile(path); err == nil {
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin password: %w", err)
	}
	pw, err := newPassword(20)
	if err != nil {
		return "", err
	}
	return pw, atomicfile.Write(path, []byte(pw+"\n"), 0o600)
}

// WriteEnv writes the env file that points the CLI at the cluster (and at
// the CA file, when the seed handed one over).
func (d *StateDir) WriteEnv(addr, apiKey string) error {
	content := fmt.Sprintf("# dropmesh cluster bootstrapped from %s: . this file to point the CLI at it\nexport DROPMESH_ADDR=%s\nexport DROPMESH_API_KEY=%s\n",
		d.Path, addr, apiKey)
	if _, err := os.Stat(d.File(CACertFile)); err == nil {
		content += fmt.Sprintf("export DROPMESH_CACERT=%s\n", d.File(CACertFile))
	}
	return atomicfile.Write(d.File(EnvFile), []byte(content), 0o600)
}

// newPassword makes a random password without look-alike characters.
func newPassword(n int) (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b strings.Builder
	for range n {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("make password: %w", err)
		}
		b.WriteByte(alphabet[k.Int64()])
	}
	return b.String(), nil
}

// NewClusterID makes the cluster's id (16 hex digits, like the seed's).
func NewClusterID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make cluster id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
