package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// claimTTL is how long a hello's seed nonce waits for its claim.
const claimTTL = 2 * time.Minute

// maxPendingClaims bounds the hellos kept: strangers calling hello cannot
// grow the agent's memory, only push out older hellos.
const maxPendingClaims = 16

// claimState is a seed's bootstrap exchange: the hellos answered and not
// yet claimed, by seed nonce. mu also serialises claims, so two valid
// claims cannot both initialise the cluster.
type claimState struct {
	mu      sync.Mutex
	pending map[string]pendingClaim
}

type pendingClaim struct {
	clientNonce string
	expires     time.Time
}

// ClaimBootstrap is POST /v1/bootstrap/claim on a seed started with a
// bootstrap token (see package bootclaim): a hello (only a client nonce)
// is answered with the seed's proof of the token; a claim (the client's
// proof and the sealed secrets, for a seed nonce of an earlier hello)
// initialises the cluster with the admin password and the cloud tokens,
// sealed into the state, and answers with the API key sealed for the
// bootstrapper. A wrong proof is ErrForbidden, a claim once the cluster is
// initialised (the token is used up) ErrConflict; both change nothing.
func (a *Agent) ClaimBootstrap(ctx context.Context, req bootclaim.Request) (bootclaim.Answer, error) {
	token := a.cfg.BootstrapToken
	if token == "" {
		return bootclaim.Answer{}, fmt.Errorf("%w: no bootstrap claim is pending on this node", raftfsm.ErrNotFound)
	}
	if err := bootclaim.CheckHex("client_nonce", req.ClientNonce); err != nil {
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: %v", raftfsm.ErrInvalid, err)
	}
	a.claims.mu.Lock()
	defer a.claims.mu.Unlock()
	if a.initialized() {
		a.logger.Warn("bootstrap claim refused: the cluster is initialised, the token is used up", "from_hello", req.Proof == "")
		return bootclaim.Answer{}, fmt.Errorf("%w: this cluster has been claimed already: the bootstrap token is used up", raftfsm.ErrConflict)
	}
	now := time.Now()
	for n, p := range a.claims.pending {
		if now.After(p.expires) {
			delete(a.claims.pending, n)
		}
	}
	if req.SeedNonce == "" && req.Proof == "" && req.Secrets == "" {
		return a.helloLocked(token, req.ClientNonce, now)
	}
	if err := bootclaim.CheckHex("seed_nonce", req.SeedNonce); err != nil {
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: %v", raftfsm.ErrInvalid, err)
	}
	p, ok := a.claims.pending[req.SeedNonce]
	if !ok || p.clientNonce != req.ClientNonce {
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: unknown or expired seed nonce: start again with a hello", raftfsm.ErrInvalid)
	}
	// One try per hello: a guess costs a fresh hello.
	delete(a.claims.pending, req.SeedNonce)
	if !bootclaim.Verify(bootclaim.ClientProof(token, req.ClientNonce, req.SeedNonce), req.Proof) {
		a.logger.Warn("bootstrap claim refused: wrong token proof")
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: the proof does not match this seed's bootstrap token", control.ErrForbidden)
	}
	var sec bootclaim.Secrets
	if err := bootclaim.Open(token, req.ClientNonce, req.SeedNonce, bootclaim.LabelSecrets, req.Secrets, &sec); err != nil {
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: %v", raftfsm.ErrInvalid, err)
	}
	sec.DOToken, sec.CFToken = strings.TrimSpace(sec.DOToken), strings.TrimSpace(sec.CFToken)
	if sec.DOToken == "" || sec.CFToken == "" || len(sec.AdminPassword) < 8 {
		return bootclaim.Answer{}, fmt.Errorf("%w: bootstrap claim: the DigitalOcean and Cloudflare tokens and an admin password of 8 characters or more are required", raftfsm.ErrInvalid)
	}
	if err := a.initClusterWith(ctx, sec.AdminPassword, sec.DOToken, sec.CFToken); err != nil {
		return bootclaim.Answer{}, fmt.Errorf("bootstrap claim: %w", err)
	}
	sealed, err := bootclaim.Seal(token, req.ClientNonce, req.SeedNonce, bootclaim.LabelResult, bootclaim.Result{APIKey: a.keys.APIKey})
	if err != nil {
		return bootclaim.Answer{}, err
	}
	a.logger.Info("bootstrap claimed: cloud tokens sealed into the state, admin user set")
	return bootclaim.Answer{Sealed: sealed}, nil
}

// helloLocked answers a hello: a fresh seed nonce, kept for its claim, and
// the seed's proof over it (claims.mu held).
func (a *Agent) helloLocked(token, clientNonce string, now time.Time) (bootclaim.Answer, error) {
	seedNonce, err := bootclaim.NewNonce()
	if err != nil {
		return bootclaim.Answer{}, err
	}
	if a.claims.pending == nil {
		a.claims.pending = map[string]pendingClaim{}
	}
	for len(a.claims.pending) >= maxPendingClaims {
		oldest := ""
		for n, p := range a.claims.pending {
			if oldest == "" || p.expires.Before(a.claims.pending[oldest].expires) {
				oldest = n
			}
		}
		delete(a.claims.pending, oldest)
	}
	a.claims.pending[seedNonce] = pendingClaim{clientNonce: clientNonce, expires: now.Add(claimTTL)}
	ca := a.bootstrapCACert()
	return bootclaim.Answer{SeedNonce: seedNonce, CACert: ca, Proof: bootclaim.SeedProof(token, clientNonce, seedNonce, ca)}, nil
}

// bootstrapCACert is the cluster CA's certificate (PEM) the bootstrapper
// pins once the seed's proof covers it; "" while the agent has no CA.
func (a *Agent) bootstrapCACert() string {
	if a.creds == nil {
		return ""
	}
	return string(a.ClusterCAPEM())
}
