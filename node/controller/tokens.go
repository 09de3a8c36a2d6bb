package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// CreateToken makes an API token: the id and the secret are drawn here, on
// the leader, and only the token's hash enters the log.
func (c *Controller) CreateToken(ctx context.Context, req control.TokenRequest, actor string) (control.TokenCreated, error) {
	if err := raftfsm.ValidateTokenName(req.Name); err != nil {
		return control.TokenCreated{}, err
	}
	if !req.Role.Valid() {
		return control.TokenCreated{}, fmt.Errorf("%w: role %q: want admin, deployer or viewer", raftfsm.ErrInvalid, req.Role)
	}
	text, tok, err := raftfsm.MakeAPIToken(req.Name, req.Role, actor)
	if err != nil {
		return control.TokenCreated{}, err
	}
	tok.User = req.User
	at := c.now()
	if _, err := c.node.Apply(ctx, &raftfsm.CreateAPIToken{At: at, Token: tok}); err != nil {
		return control.TokenCreated{}, err
	}
	tok.CreatedAt = at
	return control.TokenCreated{Token: text, Info: control.NewTokenInfo(&tok)}, nil
}

// RevokeToken removes an API token by id or name.
func (c *Controller) RevokeToken(ctx context.Context, ref string) error {
	var id string
	c.node.View(func(s *raftfsm.State) {
		if t, ok := s.TokenByRef(ref); ok {
			id = t.ID
		}
	})
	if id == "" {
		return fmt.Errorf("API token %s: %w", ref, raftfsm.ErrNotFound)
	}
	_, err := c.node.Apply(ctx, &raftfsm.RevokeAPIToken{At: c.now(), ID: id})
	return err
}

// RecordTokenUse sends a batch of token uses to the leader.
func (c *Controller) RecordTokenUse(ctx context.Context, uses map[string]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	return c.node.Report(ctx, &raftfsm.RecordTokenUse{At: c.now(), Uses: uses})
}
