package api

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// BootstrapClaimer is what a seed waiting for `dropmesh bootstrap` to hand
// over its secrets implements (node.Agent); a controller without it has no
// claim pending.
type BootstrapClaimer interface {
	// ClaimBootstrap answers a hello or a claim (see package bootclaim).
	ClaimBootstrap(ctx context.Context, req bootclaim.Request) (bootclaim.Answer, error)
}

// claimBootstrap is POST /v1/bootstrap/claim: public, because the caller
// has no API key yet; it proves the one-time bootstrap token instead.
func (s *server) claimBootstrap(c *gin.Context) {
	bc, isSeed := s.ctrl.(BootstrapClaimer)
	if !isSeed {
		s.fail(c, fmt.Errorf("%w: no bootstrap claim is pending on this node", raftfsm.ErrNotFound))
		return
	}
	var req bootclaim.Request
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	ans, err := bc.ClaimBootstrap(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, ans)
}
