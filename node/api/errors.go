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

// errProbeFailed marks a failed probe of /v1/internal/probe: not a server
// fault, the answer the leader asked for.
var errProbeFailed = errors.New("probe failed")

// classify maps an error to its status and code. Unknown errors are internal.
func classify(err error) (int, string) {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, control.CodeTooLarge
	case errors.Is(err, raftfsm.ErrInvalid), errors.Is(err, raftfsm.ErrBadEnvelope), errors.Is(err, raftfsm.ErrUnknownCommand),
		errors.Is(err, io.ErrUnexpectedEOF):
		// A body cut short (the client went, or a proxy's limit) is bad input.
		return http.StatusBadRequest, control.CodeInvalid
	case errors.Is(err, control.ErrForbidden):
		return http.StatusForbidden, control.CodeForbidden
	case errors.Is(err, raftfsm.ErrNotFound), errors.Is(err, control.ErrNotLocal):
		return http.StatusNotFound, control.CodeNotFound
	case errors.Is(err, raftfsm.ErrConflict):
		return http.StatusConflict, control.CodeConflict
	case errors.Is(err, control.ErrOutcomeUnknown):
		// Before not_leader and timeout: the write may still commit, so
		// it must not look retryable.
		return http.StatusBadGateway, control.CodeOutcomeUnknown
	case errors.Is(err, control.ErrCatchingUp):
		return http.StatusServiceUnavailable, control.CodeCatchingUp
	case errors.Is(err, control.ErrNotLeader):
		return http.StatusServiceUnavailable, control.CodeNotLeader
	case errors.Is(err, control.ErrNoLeader):
		return http.StatusServiceUnavailable, control.CodeNoLeader
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, control.CodeTimeout
	case errors.Is(err, errProbeFailed):
		return http.StatusBadGateway, control.CodeProbeFailed
	}
	return http.StatusInternalServerError, control.CodeInternal
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
	if control.Retryable(code) && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(status, control.ErrorBody{Error: code, Message: msg})
}

// invalid answers 400 with msg.
func invalid(c *gin.Context, msg string) {
	abortWith(c, http.StatusBadRequest, control.CodeInvalid, msg)
}
