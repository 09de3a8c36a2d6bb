package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Error codes of the error answer; clients branch on them.
const (
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeNotAllowed   = "method_not_allowed"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeNotLeader    = "not_leader"
	CodeNoLeader     = "no_leader"
	// CodeOutcomeUnknown: the leader went away after the request reached
	// it; it may have been applied. Not retryable: look, then decide.
	CodeOutcomeUnknown = "outcome_unknown"
	CodeTimeout        = "timeout"
	CodeProbeFailed    = "probe_failed"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
)

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Retryable reports whether a client may retry the same request (on this or
// another node) after an answer with this code.
func Retryable(code string) bool {
	return code == CodeNotLeader || code == CodeNoLeader || code == CodeRateLimited || code == CodeUnavailable
}

// errProbeFailed marks a failed probe of /v1/internal/probe: not a server
// fault, the answer the leader asked for.
var errProbeFailed = errors.New("probe failed")

// classify maps an error to its status and code. Unknown errors are internal.
func classify(err error) (int, string) {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, raftfsm.ErrInvalid), errors.Is(err, raftfsm.ErrBadEnvelope), errors.Is(err, raftfsm.ErrUnknownCommand),
		errors.Is(err, io.ErrUnexpectedEOF):
		// A body cut short (the client went, or a proxy's limit) is bad input.
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, control.ErrForbidden):
		return http.StatusForbidden, CodeForbidden
	case errors.Is(err, raftfsm.ErrNotFound), errors.Is(err, control.ErrNotLocal):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, raftfsm.ErrConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, raftfsm.ErrLeadershipLost):
		return http.StatusBadGateway, CodeOutcomeUnknown
	case errors.Is(err, control.ErrNotLeader):
		return http.StatusServiceUnavailable, CodeNotLeader
	case errors.Is(err, control.ErrNoLeader):
		return http.StatusServiceUnavailable, CodeNoLeader
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout
	case errors.Is(err, errProbeFailed):
		return http.StatusBadGateway, CodeProbeFailed
	}
	return http.StatusInternalServerError, CodeInternal
}

// userMessage is the text shown for an error: the wrapped message without
// the bare sentinel prefix ("invalid: ").
func userMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, raftfsm.ErrInvalid.Error()+": ")
	return msg
}

// fail answers with the error shape. Internal errors are logged with their
// details and answered with a generic message.
func (s *server) fail(c *gin.Context, err error) {
	status, code := classify(err)
	msg := userMessage(err)
	if status == http.StatusInternalServerError {
		s.logger.Error("api request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		msg = "internal error; the agent's log has the details"
	}
	abortWith(c, status, code, msg)
}

// abortWith answers with an error body and stops the handler chain.
func abortWith(c *gin.Context, status int, code, msg string) {
	if Retryable(code) && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(status, ErrorBody{Error: code, Message: msg})
}

// invalid answers 400 with msg.
func invalid(c *gin.Context, msg string) {
	abortWith(c, http.StatusBadRequest, CodeInvalid, msg)
}
