package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// AdminPasswordFile is where the seed writes the admin's generated password
// (mode 0600), inside its data dir.
const AdminPasswordFile = "admin-password"

// initCluster initialises a fresh cluster on the seed: cluster id, the
// admin user, the default workspace and the settings given at bootstrap.
// It does nothing on a cluster already initialised or on a non-seed.
//
// A seed with a bootstrap token waits instead: ClaimBootstrap initialises
// the cluster with what the bootstrapper hands over.
func (a *Agent) initCluster(ctx context.Context) error {
	if a.initialized() || !a.cfg.Bootstrap || a.cfg.BootstrapToken != "" {
		return nil
	}
	password, err := a.adminPassword()
	if err != nil {
		return err
	}
	return a.initClusterWith(ctx, password, a.cfg.InitDOToken, a.cfg.InitCFToken)
}

// initialized reports whether the cluster has been initialised.
func (a *Agent) initialized() bool {
	var initialized bool
	a.fsm.View(func(s *raftfsm.State) { initialized = s.Settings.Initialized })
	return initialized
}

// initClusterWith initialises the cluster with this admin password and
// these cloud tokens (plain text, sealed here before they reach raft).
func (a *Agent) initClusterWith(ctx context.Context, password, doToken, cfToken string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash admin password: %w", err)
	}
	settings := a.cfg.Init
	settings.HealthInterval = raftfsm.Duration(a.cfg.HealthInterval)
	if settings.Regions == nil && a.cfg.Region != "" {
		settings.Regions = []string{a.cfg.Region}
	}
	for _, t := range []struct {
		plain, label string
		dst          *raftfsm.Sealed
	}{{doToken, raftfsm.LabelDOToken, &settings.DOToken}, {cfToken, raftfsm.LabelCFToken, &settings.CFToken}} {
		if t.plain == "" {
			continue
		}
		sealed, err := raftfsm.Seal(a.keys.Sealer, t.label, []byte(strings.TrimSpace(t.plain)))
		if err != nil {
			return err
		}
		*t.dst = sealed
	}
	// The cluster id is the one the seed's CA was made for.
	clusterID, err := pki.ClusterOf(a.creds.Leaf())
	if err != nil {
		return err
	}
	if err := a.commitPendingCA(ctx); err != nil {
		return err
	}
	cmd := &raftfsm.InitCluster{At: a.now(), ClusterID: clusterID, ClusterName: a.cfg.ClusterName, LocalMode: a.cfg.LocalMode,
		AdminName: "admin", AdminPasswordHash: string(hash), DefaultWorkspaceID: randomHex(3), Settings: &settings}
	if _, err := a.apply(ctx, cmd); err != nil {
		return fmt.Errorf("initialise cluster: %w", err)
	}
	a.logger.Info("cluster initialised", "cluster", a.cfg.ClusterName, "id", cmd.ClusterID)
	return nil
}

// adminPassword returns the configured admin password, or reads or makes
// the one in the data dir.
func (a *Agent) adminPassword() (string, error) {
	if a.cfg.AdminPassword != "" {
		return a.cfg.AdminPassword, nil
	}
	path := a.cfg.AdminPasswordFile
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, AdminPasswordFile)
	}
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pw, err := generatePassword(20)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin password %s: %w", path, err)
	}
	return pw, nil
}

// generatePassword makes a random password without look-alike characters.
func generatePassword(n int) (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b strings.Builder
	for i := 0; i < n; i++ {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b.WriteByte(alphabet[k.Int64()])
	}
	return b.String(), nil
}

// commitPendingCA commits the seed's CA (the key sealed) to the state and
// then deletes the key's file: from then on the key exists only sealed in
// the replicated state, where every voter holds it.
func (a *Agent) commitPendingCA(ctx context.Context) error {
	path := filepath.Join(a.cfg.tlsDir(), pendingCAKeyFile)
	keyPEM, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // committed before a restart
	}
	if err != nil {
		return fmt.Errorf("the cluster CA key: %w", err)
	}
	if err := a.commitCA(ctx, a.creds.CAPEM(), keyPEM); err != nil {
		return fmt.Errorf("commit the cluster CA: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the committed CA key's file: %w", err)
	}
	return nil
}
