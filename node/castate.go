package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The cluster CA, issued certificates, revocations and join tokens in the
// replicated state (raftfsm.ClusterPKI), as the agent uses them.

// revoked reports whether a certificate serial is revoked in this node's
// replica: every verifier asks it on every handshake (and the API on every
// request), so a revocation holds from its commit on.
func (a *Agent) revoked(serial string) bool { return a.fsm.CertRevoked(serial) }

// commitCA seals the CA key and commits the CA, and records the seed's own
// certificate (signed before there was a state to record it in).
func (a *Agent) commitCA(ctx context.Context, certPEM, keyPEM []byte) error {
	var have string
	a.fsm.View(func(s *raftfsm.State) { have = s.PKI.CACertPEM })
	if have == "" {
		sealed, err := raftfsm.Seal(a.keys.Sealer, raftfsm.LabelCAKey, keyPEM)
		if err != nil {
			return err
		}
		if _, err := a.apply(ctx, &raftfsm.SetClusterCA{At: a.now(), CACertPEM: string(certPEM), CAKey: sealed}); err != nil {
			return err
		}
	} else if have != string(certPEM) {
		return fmt.Errorf("%w: the state holds another cluster CA than this seed's", raftfsm.ErrConflict)
	}
	leaf := a.creds.Leaf()
	return a.recordCert(ctx, a.cfg.NodeID, pki.SerialOf(leaf), leaf.NotBefore, leaf.NotAfter)
}

// clusterCA unseals the CA from the state: the leader signs with it.
func (a *Agent) clusterCA() (*pki.CA, error) {
	var p raftfsm.ClusterPKI
	a.fsm.View(func(s *raftfsm.State) { p = s.PKI })
	if p.CACertPEM == "" {
		return nil, fmt.Errorf("%w: the cluster has no CA yet", raftfsm.ErrConflict)
	}
	key, err := raftfsm.Open(a.keys.Sealer, raftfsm.LabelCAKey, p.CAKey)
	if err != nil {
		return nil, fmt.Errorf("unseal the CA key: %w", err)
	}
	return pki.ParseCA([]byte(p.CACertPEM), key)
}

// commitJoinToken commits a join token's hash.
func (a *Agent) commitJoinToken(ctx context.Context, hash, node, purpose string, now, expires time.Time) error {
	_, err := a.apply(ctx, &raftfsm.CreateJoinToken{At: now, Token: raftfsm.JoinToken{Hash: hash, Purpose: purpose, Node: node, ExpiresAt: expires}})
	return err
}

// useJoinToken spends a join token for node; a refusal is 403 with why.
func (a *Agent) useJoinToken(ctx context.Context, hash, node string) error {
	_, err := a.apply(ctx, &raftfsm.UseJoinToken{At: a.now(), Hash: hash, UsedBy: node})
	for _, refusal := range []error{raftfsm.ErrJoinTokenUnknown, raftfsm.ErrJoinTokenUsed, raftfsm.ErrJoinTokenExpired, raftfsm.ErrJoinTokenWrongNode} {
		if errors.Is(err, refusal) {
			return fmt.Errorf("%w: %w", control.ErrForbidden, err)
		}
	}
	return err
}

// recordCert records an issued certificate.
func (a *Agent) recordCert(ctx context.Context, node, serial string, notBefore, notAfter time.Time) error {
	now := a.now()
	_, err := a.apply(ctx, &raftfsm.RecordNodeCert{At: now, Cert: raftfsm.NodeCert{Serial: serial, Node: node, NotBefore: notBefore, NotAfter: notAfter, IssuedAt: now}})
	return err
}

// revokeNode revokes every certificate of node.
func (a *Agent) revokeNode(ctx context.Context, node, reason string) error {
	n, err := a.apply(ctx, &raftfsm.RevokeCerts{At: a.now(), Node: node, Reason: reason})
	if err != nil {
		return fmt.Errorf("revoke the certificates of %s: %w", node, err)
	}
	a.logger.Warn("revoked a node's certificates", "target", node, "count", n, "reason", reason)
	return nil
}
