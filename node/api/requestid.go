package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/logring"
)

// HeaderRequestID carries a request's id: the caller's when it sends a
// usable one, else one the agent makes. It comes back on the answer, goes
// with a request forwarded to the leader, and is on every log line of the
// request (as "request").
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds a caller's request id.
const maxRequestIDLen = 64

// requestID gives the request its id and logs it when done: writes at
// Info, failures at Warn, successful reads at Debug.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader(HeaderRequestID)
	if !usableRequestID(id) {
		id = newRequestID()
		c.Request.Header.Set(HeaderRequestID, id)
	}
	c.Header(HeaderRequestID, id)
	ctx := logring.ContextWith(c.Request.Context(), slog.String("request", id))
	c.Request = c.Request.WithContext(ctx)
	start := time.Now()
	c.Next()

	status := c.Writer.Status()
	level := slog.LevelDebug
	switch {
	case status >= http.StatusInternalServerError:
		level = slog.LevelWarn
	case c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead, status >= http.StatusBadRequest:
		level = slog.LevelInfo
	}
	s.logger.LogAttrs(ctx, level, "api request",
		slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
		slog.Int("status", status), slog.Duration("took", time.Since(start)),
		slog.Bool("forwarded", c.GetHeader(control.HeaderForwarded) != ""))
}

// usableRequestID accepts short ids of letters, digits and -_.: only.
func usableRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return false
		}
	}
	return true
}

// newRequestID is 8 random bytes in hex.
func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "req-" + hex.EncodeToString(b)
}
