package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Joining nodes, certificate renewal and join tokens (control.Enroller).

// errNoEnroller answers the enrollment routes of an API built without one.
var errNoEnroller = errors.New("this agent does not enroll nodes")

func (s *server) enroller(c *gin.Context) (control.Enroller, bool) {
	if s.opts.Enroller == nil {
		abortWith(c, http.StatusServiceUnavailable, control.CodeUnavailable, errNoEnroller.Error())
		return nil, false
	}
	return s.opts.Enroller, true
}

// join trades a join token for a certificate. The caller has no credential
// but the token; the leader's Enroller checks and uses it.
func (s *server) join(c *gin.Context) {
	e, good := s.enroller(c)
	if !good {
		return
	}
	var req control.JoinRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if strings.TrimSpace(req.Token) == "" {
		invalid(c, "no join token: give the token from the node's user data or `dropmesh join-token create` (--join-token)")
		return
	}
	if err := raftfsm.ValidateNodeID(req.NodeID); err != nil {
		s.fail(c, err)
		return
	}
	if net.ParseIP(req.IP) == nil {
		invalid(c, fmt.Sprintf("ip %q: want the node's private IP address", req.IP))
		return
	}
	if strings.TrimSpace(req.CSR) == "" {
		invalid(c, "no certificate request (csr)")
		return
	}
	ans, err := e.Join(c.Request.Context(), req, s.remoteIP(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, ans)
}

// remoteIP is the address the request came from: the connection's peer, or,
// when a member forwarded it, the address that member saw.
func (s *server) remoteIP(c *gin.Context) string {
	if c.GetString(ctxPeerNode) != "" && c.GetHeader(control.HeaderForwarded) != "" {
		if xff := c.GetHeader("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			return strings.TrimSpace(first)
		}
	}
	if a := clientAddr(c); a.IsValid() {
		return a.String()
	}
	return ""
}

// renewCertificate signs a fresh certificate for the calling node: the
// identity is the one its current certificate proves, never one it names.
func (s *server) renewCertificate(c *gin.Context) {
	e, good := s.enroller(c)
	if !good {
		return
	}
	var req control.CertificateRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if strings.TrimSpace(req.CSR) == "" {
		invalid(c, "no certificate request (csr)")
		return
	}
	node := callerNode(c)
	if node == "" {
		abortWith(c, http.StatusForbidden, control.CodeForbidden, "no node certificate came with the request")
		return
	}
	ans, err := e.RenewCertificate(c.Request.Context(), node, []byte(req.CSR))
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, ans)
}

// createJoinToken makes a one-time join token.
func (s *server) createJoinToken(c *gin.Context) {
	e, good := s.enroller(c)
	if !good {
		return
	}
	var req control.JoinTokenRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Node != "" {
		if err := raftfsm.ValidateNodeID(req.Node); err != nil {
			s.fail(c, err)
			return
		}
	}
	info, err := e.CreateJoinToken(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, info)
}
