package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/pki"
)

// ErrJoinRefused means the cluster refused this node's join token (unknown,
// used or expired): trying again with the same token cannot help.
var ErrJoinRefused = errors.New("join refused")

// enrollRetry is how long Enroll waits between rounds while no member
// answers (a new droplet may boot before the cluster can take it).
const enrollRetry = 2 * time.Second

// Enroll gives a node that has no credentials yet its certificate and the
// cluster's keys, before raft and the gossip start: it makes a key and a
// certificate request, proves its one-time join token to a member's API
// (POST /v1/join, the member's certificate chain checked against the pinned
// CA fingerprint), and saves what it gets in its data dir: the certificate
// and the CA in DATA_DIR/tls, the cluster secret, the gossip keys. A node
// that has credentials, the seed, and a node without a join token do
// nothing here (New then loads or makes credentials, or says what is
// missing). It retries while no member answers, until ctx ends; a refused
// token ends it with ErrJoinRefused.
func Enroll(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.complete(); err != nil {
		return err
	}
	_, err := pki.LoadCredentials(cfg.tlsDir())
	if err == nil || !errors.Is(err, pki.ErrNoCredentials) || cfg.Bootstrap || cfg.JoinToken == "" {
		return nil
	}
	addrs := cfg.JoinAPI
	if len(addrs) == 0 {
		for _, j := range cfg.Join {
			if host, _, err := net.SplitHostPort(j); err == nil {
				addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(cfg.APIPort)))
			}
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("enroll %s: no member to ask: give --join (gossip addresses) or --join-api", cfg.NodeID)
	}
	id := pki.Identity{NodeID: cfg.NodeID, IPs: []net.IP{net.ParseIP(cfg.AdvertiseIP)}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		return fmt.Errorf("enroll %s: %w", cfg.NodeID, err)
	}
	client, err := apiclient.New(apiclient.Config{Addrs: addrs, TLS: pinnedTLS(cfg.CAFingerprint), Timeout: 30 * time.Second, RetryFor: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("enroll %s: %w", cfg.NodeID, err)
	}
	req := control.JoinRequest{Token: cfg.JoinToken, NodeID: cfg.NodeID, IP: cfg.AdvertiseIP, CSR: string(csrPEM)}
	logger = logger.With("node", cfg.NodeID)
	var ans control.JoinAnswer
	for {
		ans, err = client.Join(ctx, req)
		if err == nil {
			break
		}
		var apiErr *apiclient.APIError
		if errors.As(err, &apiErr) && !apiErr.Retryable() {
			return fmt.Errorf("enroll %s: %w: %s", cfg.NodeID, ErrJoinRefused, apiErr.Message)
		}
		if errors.Is(err, pki.ErrUntrusted) {
			// Not the cluster it was told to join: the token stays unsent.
			return fmt.Errorf("enroll %s: the member's certificate does not chain to the pinned CA %s: %w", cfg.NodeID, cfg.CAFingerprint, err)
		}
		logger.Warn("enroll: no member took the join request yet; retrying", "members", addrs, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("enroll %s: %w", cfg.NodeID, ctx.Err())
		case <-time.After(enrollRetry):
		}
	}
	return saveEnrollment(cfg, keyPEM, ans, logger)
}

// saveEnrollment checks a join answer and saves it. The credentials go last:
// their presence means the node has enrolled.
func saveEnrollment(cfg Config, keyPEM []byte, ans control.JoinAnswer, logger *slog.Logger) error {
	creds, err := pki.NewCredentials([]byte(ans.Certificate), keyPEM, []byte(ans.CA))
	if err != nil {
		return fmt.Errorf("enroll %s: the answer: %w", cfg.NodeID, err)
	}
	if got := pki.FingerprintOf(creds.CA()); got != cfg.CAFingerprint {
		return fmt.Errorf("enroll %s: the answer's CA is %s, not the pinned %s", cfg.NodeID, got, cfg.CAFingerprint)
	}
	if creds.NodeID() != cfg.NodeID {
		return fmt.Errorf("enroll %s: the certificate names node %s", cfg.NodeID, creds.NodeID())
	}
	secret, err := clusterconf.ParseClusterSecret(ans.ClusterSecret)
	if err != nil {
		return fmt.Errorf("enroll %s: the answer's cluster secret: %w", cfg.NodeID, err)
	}
	keys, err := converge.ParseGossipKeys(ans.GossipKeys)
	if err != nil {
		return fmt.Errorf("enroll %s: the answer's gossip keys: %w", cfg.NodeID, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if err := clusterconf.WriteClusterSecretFile(cfg.ClusterSecretFile, secret); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(cfg.DataDir, converge.GossipKeysFileName), []byte(strings.Join(converge.EncodeGossipKeys(keys), "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("enroll %s: gossip keys: %w", cfg.NodeID, err)
	}
	if err := creds.Save(cfg.tlsDir()); err != nil {
		return err
	}
	logger.Info("enrolled: got this node's certificate and the cluster's keys", "serial", creds.Serial(), "expires", creds.NotAfter(),
		"ca", cfg.CAFingerprint)
	return nil
}
