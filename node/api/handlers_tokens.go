package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func (s *server) listTokens(c *gin.Context) {
	out := []control.TokenInfo{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Tokens) {
			out = append(out, control.NewTokenInfo(st.Tokens[id]))
		}
	})
	ok(c, out)
}

func (s *server) createToken(c *gin.Context) {
	var req control.TokenRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateTokenName(req.Name); err != nil {
		s.fail(c, err)
		return
	}
	if !req.Role.Valid() {
		invalid(c, fmt.Sprintf("role %q: want admin, deployer or viewer", req.Role))
		return
	}
	if req.User != "" {
		if err := raftfsm.ValidateUserName(req.User); err != nil {
			s.fail(c, err)
			return
		}
	}
	created, err := s.ctrl.CreateToken(c.Request.Context(), req, actor(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, created)
}

func (s *server) revokeToken(c *gin.Context) {
	if err := s.ctrl.RevokeToken(c.Request.Context(), c.Param("ref")); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}
