package node

import (
	"context"
	"errors"
	"time"

	"github.com/dropmesh/dropmesh/node/pki"
)

// The cluster CA, issued certificates, revocations and join tokens in the
// replicated state. PROVISIONAL until raftfsm carries them.

var errNoCAState = errors.New("the replicated state does not carry the cluster CA yet")

// revoked reports whether a certificate serial is revoked in the state.
func (a *Agent) revoked(serial string) bool { return false }

// commitCA seals the CA key and commits the CA (initCluster).
func (a *Agent) commitCA(ctx context.Context, certPEM, keyPEM []byte) error { return errNoCAState }

// clusterCA unseals the CA from the state (the leader signs with it).
func (a *Agent) clusterCA() (*pki.CA, error) { return nil, errNoCAState }

// commitJoinToken commits a join token's hash.
func (a *Agent) commitJoinToken(ctx context.Context, hash, node, purpose string, now, expires time.Time) error {
	return errNoCAState
}

// useJoinToken uses a join token once, for node.
func (a *Agent) useJoinToken(ctx context.Context, hash, node string) error { return errNoCAState }

// recordCert records an issued certificate.
func (a *Agent) recordCert(ctx context.Context, node, serial string, notAfter time.Time) error {
	return errNoCAState
}

// revokeNode revokes every certificate of node.
func (a *Agent) revokeNode(ctx context.Context, node, reason string) error { return errNoCAState }
