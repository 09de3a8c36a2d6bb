package ui

import (
	"context"
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
)

// linearReader is implemented by a Node whose reads can be made
// linearizable (node.Agent): the leader confirms its leadership and waits
// until its replica reflects every acknowledged write before a page reads it.
type linearReader interface {
	ReadIndex(ctx context.Context) (uint64, error)
	WaitApplied(ctx context.Context, idx uint64) error
}

// linearize makes the page's reads linearizable on the leader: a leader
// that lost its quorum (paused, partitioned) shows no old state as current.
// It reports false when this node turned out not to lead (the caller then
// sends the browser on), and answers the no-leader page on other failures.
func (s *server) linearize(c *gin.Context) bool {
	lr, ok := s.node.(linearReader)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadTimeout)
	defer cancel()
	idx, err := lr.ReadIndex(ctx)
	if err == nil {
		err = lr.WaitApplied(ctx, idx)
	}
	if errors.Is(err, control.ErrNotLeader) {
		return false
	}
	if err != nil {
		c.Abort()
		s.noLeader(c)
		return false
	}
	return true
}
