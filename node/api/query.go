package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// query reads typed query parameters; the first bad one is kept in err, so
// a handler parses everything and then checks once.
type query struct {
	c   *gin.Context
	now time.Time
	err error
}

func (s *server) query(c *gin.Context) *query { return &query{c: c, now: s.now()} }

func (q *query) failf(format string, args ...any) {
	if q.err == nil {
		q.err = fmt.Errorf("%w: %s", raftfsm.ErrInvalid, fmt.Sprintf(format, args...))
	}
}

// str returns a parameter as given.
func (q *query) str(name string) string { return q.c.Query(name) }

// int parses an integer in [lo, hi]; absent gives def.
func (q *query) int(name string, def, lo, hi int64) int64 {
	raw := q.c.Query(name)
	if raw == "" {
		return def
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		q.failf("query parameter %s=%q: want an integer from %d to %d", name, raw, lo, hi)
		return def
	}
	return v
}

// uint parses a non-negative 64-bit integer (sequence numbers, indexes).
func (q *query) uint(name string) uint64 {
	raw := q.c.Query(name)
	if raw == "" {
		return 0
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		q.failf("query parameter %s=%q: want a non-negative integer", name, raw)
	}
	return v
}

// bool parses true/false/1/0; absent is false.
func (q *query) bool(name string) bool {
	raw := q.c.Query(name)
	if raw == "" {
		return false
	}
	v, err := strconv.ParseBool(raw)
	if err != nil {
		q.failf("query parameter %s=%q: want true or false", name, raw)
	}
	return v
}

// time parses an RFC 3339 time, unix seconds, or a duration ago ("10m").
func (q *query) time(name string) time.Time {
	raw := q.c.Query(name)
	if raw == "" {
		return time.Time{}
	}
	t, err := control.ParseSince(raw, q.now)
	if err != nil {
		q.failf("query parameter %s: %v", name, err)
	}
	return t
}

// check answers 400 when a parameter was bad and reports whether all were good.
func (q *query) check() bool {
	if q.err != nil {
		invalid(q.c, userMessage(q.err))
		return false
	}
	return true
}

// decodeJSON reads a JSON body strictly: one document, no unknown fields.
func decodeJSON(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: request body is empty; want a JSON document", raftfsm.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %s", raftfsm.ErrInvalid, describeJSONError(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: request body: more than one JSON document", raftfsm.ErrInvalid)
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Sprintf("want a JSON %s, not %s", typeErr.Type, typeErr.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	var synErr *json.SyntaxError
	if errors.As(err, &synErr) {
		return fmt.Sprintf("not valid JSON at byte %d: %v", synErr.Offset, synErr)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON document is cut short"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Patterns of path parameters that raftfsm has no validator for.
var (
	containerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)
	idPattern            = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	kindPattern          = regexp.MustCompile(`^[a-z][a-z.]{0,31}$`)
	registryPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,252})(:[0-9]{1,5})?$`)
)

func validateContainerName(n string) error {
	if !containerNamePattern.MatchString(n) {
		return fmt.Errorf("%w: container name %q: want 1-128 lowercase letters, digits, '_', '.' and '-'", raftfsm.ErrInvalid, n)
	}
	return nil
}

func validateID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %s %q: want 1-64 letters, digits, '.', '_' and '-'", raftfsm.ErrInvalid, what, id)
	}
	return nil
}

func validateRegistry(r string) error {
	if !registryPattern.MatchString(r) {
		return fmt.Errorf("%w: registry %q: want a host name with an optional :port", raftfsm.ErrInvalid, r)
	}
	return nil
}

// validateWorkspaceRef checks a workspace given by name or id.
func validateWorkspaceRef(ref string) error {
	if raftfsm.IsWorkspaceID(ref) {
		return nil
	}
	return raftfsm.ValidateSlug("workspace", ref)
}

// respond writes a JSON answer, or only the status when body is nil.
func respond(c *gin.Context, status int, body any) {
	if body == nil {
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	c.JSON(status, body)
}

// ok answers 200 with body.
func ok(c *gin.Context, body any) { respond(c, http.StatusOK, body) }
