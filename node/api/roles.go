package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Who may call a route: the cluster API key is the bootstrap admin
// credential; an API token carries its own role (the roles of the UI users).
// Every route's required role comes from the route table (requiredRole), so
// a new route gets one without anyone remembering to add it.

// Gin context keys of the authenticated caller.
const (
	ctxRole  = "dropmesh.role"
	ctxActor = "dropmesh.actor"
)

// roleAllows reports whether a caller with role have may use a route that needs need.
func roleAllows(have, need raftfsm.Role) bool { return have.Allows(need) }

// requiredRole is the role a route needs: its own Role, else viewer for a
// read (GET, HEAD) and deployer for anything else. Public routes need none.
func requiredRole(r Route) raftfsm.Role {
	switch {
	case r.Kind == RoutePublic:
		return ""
	case r.Role != "":
		return r.Role
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return raftfsm.RoleViewer
	}
	return raftfsm.RoleDeployer
}

// credential checks a bearer value: an API token (dmt_...) against the
// hashes in the local replica (its role capped by its user's), anything else against the cluster API key in
// constant time. It returns the caller's role, a name for the event log and
// the token's id ("" for the cluster key).
func (s *server) credential(text string) (role raftfsm.Role, actor, tokenID string, ok bool) {
	if id, isToken := raftfsm.APITokenID(text); isToken {
		s.ctrl.View(func(st *raftfsm.State) {
			if t, found := st.Tokens[id]; found && t.Matches(text) {
				// A user's token has at most the user's current role,
				// and none once the user is gone.
				if r, live := st.EffectiveRole(t); live {
					role, actor, tokenID, ok = r, "token "+t.Name, t.ID, true
				}
			}
		})
		return role, actor, tokenID, ok
	}
	sum := sha256.Sum256([]byte(text))
	if subtle.ConstantTimeCompare(sum[:], s.keyHash[:]) == 1 {
		return raftfsm.RoleAdmin, "api", "", true
	}
	return "", "", "", false
}

// authorize refuses a caller whose role is below the route's (403, nothing changed).
func (s *server) authorize(r Route) gin.HandlerFunc {
	need := requiredRole(r)
	return func(c *gin.Context) {
		have := callerRole(c)
		if roleAllows(have, need) {
			return
		}
		abortWith(c, http.StatusForbidden, control.CodeForbidden, fmt.Sprintf(
			"%s %s needs the role %s; this credential has the role %s (create a token with that role, or use the cluster API key)", r.Method, r.Path, need, have))
	}
}

// callerRole is the role authenticate gave the request.
func callerRole(c *gin.Context) raftfsm.Role {
	if v, ok := c.Get(ctxRole); ok {
		if r, ok := v.(raftfsm.Role); ok {
			return r
		}
	}
	return ""
}

// actor names the caller for the event log: "api" for the cluster key,
// "token NAME" for an API token.
func actor(c *gin.Context) string {
	if v := c.GetString(ctxActor); v != "" {
		return v
	}
	return "api"
}

// tokenUses notes when tokens are used and sends the uses in batches, at
// most one batch per flush interval per node: a request never waits for, or
// causes, a raft write of its own.
type tokenUses struct {
	every  time.Duration
	record func(ctx context.Context, uses map[string]time.Time) error
	onErr  func(error)

	mu      sync.Mutex
	pending map[string]time.Time
	armed   bool
}

func newTokenUses(every time.Duration, record func(context.Context, map[string]time.Time) error, onErr func(error)) *tokenUses {
	return &tokenUses{every: every, record: record, onErr: onErr, pending: map[string]time.Time{}}
}

// note records a use of token id at; the first use after a flush arms the next one.
func (u *tokenUses) note(id string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) >= raftfsm.MaxTokenUses {
		if _, ok := u.pending[id]; !ok {
			return
		}
	}
	if at.After(u.pending[id]) {
		u.pending[id] = at
	}
	if !u.armed {
		u.armed = true
		time.AfterFunc(u.every, u.flush)
	}
}

// flushTimeout bounds one batch's write.
const flushTimeout = 10 * time.Second

// flush sends the pending uses. A batch that fails is dropped (the next use
// is recorded again): last-use times are a convenience, not a ledger.
func (u *tokenUses) flush() {
	u.mu.Lock()
	batch := u.pending
	u.pending, u.armed = map[string]time.Time{}, false
	u.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := u.record(ctx, batch); err != nil {
		u.onErr(err)
	}
}
