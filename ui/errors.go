package ui

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// errNoPage is a page whose subject does not exist (a service undeployed
// meanwhile): a 404, not a failure.
var errNoPage = errors.New("no such page")

// classify maps an error from the Node to an HTTP status.
func classify(err error) int {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, raftfsm.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, control.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, raftfsm.ErrNotFound), errors.Is(err, errNoPage):
		return http.StatusNotFound
	case errors.Is(err, raftfsm.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, control.ErrNotLeader), errors.Is(err, control.ErrNoLeader):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// userMessage is the text shown for an error: the wrapped message, without
// the bare sentinel prefix, and plain words for the conditions a user can
// only wait out.
func userMessage(err error) string {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return "The upload is too large."
	case errors.Is(err, control.ErrNotLeader):
		return "Leadership moved to another node while this was sent. Nothing was changed; please try again."
	case errors.Is(err, control.ErrNoLeader):
		return "The cluster has no leader right now. Nothing was changed; please try again in a few seconds."
	case errors.Is(err, context.DeadlineExceeded):
		return "The cluster did not answer in time. The change may still happen; check again in a moment."
	}
	msg := plainMessage(err)
	if msg == "" {
		return "Something went wrong."
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// plainMessage is an error's text without the bare sentinel prefix ("invalid: ").
func plainMessage(err error) string {
	return strings.TrimPrefix(err.Error(), raftfsm.ErrInvalid.Error()+": ")
}

// fail shows an error that is not tied to a form as a page of its own.
func (s *server) fail(c *gin.Context, err error) {
	status := classify(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.logger.Error("ui request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	title := http.StatusText(status)
	if status == http.StatusNotFound {
		title = "Not found"
	}
	s.renderError(c, status, title, userMessage(err))
}

// recover turns a panic in a handler into a plain error page; the details
// go to the log, never to the browser.
func (s *server) recover(c *gin.Context) {
	defer func() {
		if rec := recover(); rec != nil {
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			s.logger.Error("ui handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", rec)
			if !c.Writer.Written() {
				s.renderError(c, http.StatusInternalServerError, "Something went wrong", "The page failed; the agent's log has the details.")
			}
			c.Abort()
		}
	}()
	c.Next()
}

// securityHeaders forbid framing, inline scripts and styles, and sniffing.
func (s *server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.Next()
}
