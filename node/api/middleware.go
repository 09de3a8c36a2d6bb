package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/gin-gonic/gin"
)

// chain is the handler chain of one route: limits, auth, query check,
// deadline, where it runs (kind), then the handler.
func (s *server) chain(r Route) []gin.HandlerFunc {
	var hs []gin.HandlerFunc
	switch r.access() {
	case AccessNone:
		hs = append(hs, s.limitPing, s.peerNode)
	case AccessNode:
		hs = append(hs, s.requireNode, s.authenticate, s.authorize(r))
	default:
		hs = append(hs, s.authenticate, s.peerNode, s.authorize(r))
	}
	hs = append(hs, s.limitBody(s.bodyLimit(r)), s.checkQuery(r), s.deadline(r))
	switch r.Kind {
	case RouteWrite:
		hs = append(hs, s.toLeader)
	case RouteRead:
		if !r.OwnView {
			hs = append(hs, s.read)
		}
		hs = append(hs, s.block)
	case RouteLocal:
		if r.Method == http.MethodGet {
			hs = append(hs, s.block)
		}
	}
	return append(hs, r.Handler)
}

func (s *server) bodyLimit(r Route) int64 {
	if r.MaxBody > 0 {
		return r.MaxBody
	}
	switch r.Body {
	case BodyUpload:
		return s.opts.Limits.MaxUploadBytes
	case BodyState:
		return s.opts.Limits.MaxStateBytes
	}
	return s.opts.MaxBodyBytes
}

// clientAddr is the address of the peer (no proxy headers are trusted).
func clientAddr(c *gin.Context) netip.Addr {
	ap, err := netip.ParseAddrPort(c.Request.RemoteAddr)
	if err != nil {
		if a, err := netip.ParseAddr(c.Request.RemoteAddr); err == nil {
			return a.Unmap()
		}
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// clientKey is the limiters' key of a request: its real client address
// (realClientAddr), else the raw peer address.
func clientKey(c *gin.Context) string {
	if a := realClientAddr(c.Request); a.IsValid() {
		return a.String()
	}
	return c.Request.RemoteAddr
}

// limitPing rate-limits the public route per client IP.
func (s *server) limitPing(c *gin.Context) {
	if ok, wait := s.pingLimit.allow(clientKey(c), s.now()); !ok {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		abortWith(c, http.StatusTooManyRequests, control.CodeRateLimited, "too many requests from this address; slow down")
	}
}

// authenticate checks the bearer credential (the cluster API key or an API
// token, see credential) and records the caller's role for authorize.
//
// A valid credential is always served: the failure limiter is consulted only
// once the credential turned out wrong, so a storm of wrong keys from an
// address everyone shares (the edge, a node's containers) slows the guessers
// (429 once their bucket is empty) and never the holder of the right key.
func (s *server) authenticate(c *gin.Context) {
	if !s.opts.RequireAuthAlways && s.trusted(clientAddr(c)) {
		c.Set(ctxRole, raftfsm.RoleAdmin)
		return
	}
	scheme, token, found := strings.Cut(c.GetHeader("Authorization"), " ")
	role, who, tokenID, good := s.credential(strings.TrimSpace(token))
	if good && found && strings.EqualFold(scheme, "Bearer") {
		c.Set(ctxRole, role)
		c.Set(ctxActor, who)
		if tokenID != "" {
			s.uses.note(tokenID, s.now())
		}
		return
	}
	ip, now := clientKey(c), s.now()
	if blocked, wait := s.authFail.blocked(ip, now); blocked {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		abortWith(c, http.StatusTooManyRequests, control.CodeRateLimited, "too many failed authentications from this address; wait and check the API key")
		return
	}
	s.authFail.take(ip, now)
	c.Header("WWW-Authenticate", `Bearer realm="dropmesh"`)
	abortWith(c, http.StatusUnauthorized, control.CodeUnauthorized, "missing or wrong API key: send Authorization: Bearer <key> (DROPMESH_API_KEY, or an API token)")
}

// Context keys of a request's verified caller.
const (
	// ctxPeerNode is the node id of the agent that made the TLS connection
	// (its valid node certificate), when it presented one.
	ctxPeerNode = "dropmesh.peer-node"
	// ctxNode is the node the request speaks for: the peer node, or, when a
	// peer node forwarded the request, the node it forwarded it for.
	ctxNode = "dropmesh.node"
)

// verifyPeer returns the node id of the caller's certificate. ok is false
// when the caller presented none; err is set when it presented one that is
// not a valid, unrevoked node certificate of the cluster CA.
func (s *server) verifyPeer(c *gin.Context) (id string, ok bool, err error) {
	tlsState := c.Request.TLS
	if tlsState == nil || len(tlsState.PeerCertificates) == 0 {
		return "", false, nil
	}
	if s.opts.VerifyNode == nil {
		return "", true, errors.New("this agent checks no node certificates")
	}
	// Checked on every request, not only at the handshake: a connection
	// kept alive must not outlive its certificate's revocation.
	id, err = s.opts.VerifyNode(*tlsState)
	return id, true, err
}

// peerNode records the caller's node identity, when it presented a valid
// node certificate, so a forward can pass it on; a forged identity header
// from anyone else is dropped. A certificate that is no longer valid (it
// was revoked while its connection stayed open) is refused on every route.
func (s *server) peerNode(c *gin.Context) {
	id, ok, err := s.verifyPeer(c)
	if !ok {
		c.Request.Header.Del(control.HeaderNode)
		return
	}
	if err != nil {
		c.Request.Header.Del(control.HeaderNode)
		abortWith(c, http.StatusForbidden, control.CodeForbidden, fmt.Sprintf("the client certificate is refused: %v", err))
		return
	}
	s.setNode(c, id)
}

// setNode records the verified peer and the node the request speaks for.
func (s *server) setNode(c *gin.Context, peer string) {
	c.Set(ctxPeerNode, peer)
	node := peer
	if fwd := c.GetHeader(control.HeaderNode); fwd != "" && c.GetHeader(control.HeaderForwarded) != "" {
		// A member forwarded it: it checked the original caller's
		// certificate and names that node.
		node = fwd
	}
	c.Set(ctxNode, node)
	// A forward passes it on (copyHeaders), in place of whatever came.
	c.Request.Header.Set(control.HeaderNode, node)
}

// requireNode refuses a caller that presents no valid node certificate, on
// the internal routes: holding the API key is not enough to speak for a
// node.
func (s *server) requireNode(c *gin.Context) {
	id, ok, err := s.verifyPeer(c)
	switch {
	case !ok:
		c.Request.Header.Del(control.HeaderNode)
		abortWith(c, http.StatusForbidden, control.CodeForbidden, fmt.Sprintf("%s %s is internal: only a member presenting its node certificate (TLS client certificate from the cluster CA) may call it",
			c.Request.Method, c.Request.URL.Path))
	case err != nil:
		c.Request.Header.Del(control.HeaderNode)
		s.logger.Warn("internal route refused a certificate", "path", c.Request.URL.Path, "remote", c.Request.RemoteAddr, "err", err)
		abortWith(c, http.StatusForbidden, control.CodeForbidden, fmt.Sprintf("%s %s is internal and the client certificate is refused: %v", c.Request.Method, c.Request.URL.Path, err))
	default:
		s.setNode(c, id)
	}
}

// callerNode is the node a request speaks for ("" when no node certificate came with it).
func callerNode(c *gin.Context) string { return c.GetString(ctxNode) }

func (s *server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	return slices.ContainsFunc(s.opts.TrustedNets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// limitBody bounds the request body; a declared length over the limit is
// refused before anything is read.
func (s *server) limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			abortWith(c, http.StatusRequestEntityTooLarge, control.CodeTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", c.Request.ContentLength, limit))
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
	}
}

// Query parameters every route of a kind takes.
var (
	readParams = []Param{
		{Name: "index", Type: "integer", Description: "alone: answer once this node has applied this raft index (a write's X-Dropmesh-Index: read your writes); with wait: blocking read, answer once the state's index is above it"},
		{Name: "wait", Type: "string", Description: "blocking read: the longest wait, such as 30s (at most 10m)"},
	}
	consistentParam = Param{Name: "consistent", Type: "boolean", Description: "linearizable read (the default; kept for older clients)"}
)

// queryParams lists every query parameter a route accepts.
func queryParams(r Route) []Param {
	ps := slices.Clone(r.Query)
	if r.Method == http.MethodGet && r.Kind != RoutePublic {
		// stale is taken by every GET, so a client can make all its reads
		// stale; a local route answers from its node anyway.
		ps = append(ps, readParams...)
		ps = append(ps, staleParam)
	}
	if r.Kind == RouteRead {
		ps = append(ps, consistentParam)
	}
	return ps
}

// checkQuery refuses unknown, repeated and malformed query parameters.
func (s *server) checkQuery(r Route) gin.HandlerFunc {
	params := queryParams(r)
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Name
	}
	return func(c *gin.Context) {
		vals, err := url.ParseQuery(c.Request.URL.RawQuery)
		if err != nil {
			invalid(c, fmt.Sprintf("malformed query string: %v", err))
			return
		}
		for name, vs := range vals {
			if !slices.Contains(names, name) {
				takes := "no query parameters"
				if len(names) > 0 {
					takes = "only " + strings.Join(names, ", ")
				}
				invalid(c, fmt.Sprintf("unknown query parameter %q: %s %s takes %s", name, r.Method, r.Path, takes))
				return
			}
			if len(vs) > 1 {
				invalid(c, fmt.Sprintf("query parameter %q is given %d times", name, len(vs)))
				return
			}
		}
	}
}

// deadline applies the caller's deadline (X-Dropmesh-Timeout) and, for
// writes without one, the default write timeout.
func (s *server) deadline(r Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		var d time.Duration
		if r.Kind == RouteWrite {
			d = s.opts.Limits.WriteTimeout
		}
		if h := c.GetHeader(control.HeaderTimeout); h != "" {
			v, err := time.ParseDuration(h)
			if err != nil || v <= 0 || v > 24*time.Hour {
				invalid(c, fmt.Sprintf("header %s %q: want a positive duration such as 30s", control.HeaderTimeout, h))
				return
			}
			d = v
		}
		if d <= 0 {
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// toLeader runs a write here when this node leads, and forwards it to the
// leader otherwise.
func (s *server) toLeader(c *gin.Context) {
	if s.ctrl.IsLeader() {
		s.stampIndex(c)
		return
	}
	s.forwardToLeader(c)
}

// forwardToLeader relays the request to the leader and ends the chain.
//
// A leader change is ridden out rather than passed on: with no leader known
// the request waits for one (up to Limits.LeaderWait), and a forward that
// could not reach the leader goes to its successor, as long as the old
// leader cannot have acted on it (the request never left, or it is safe to
// repeat). A request that may have been applied is never sent twice: the
// caller is told the outcome is unknown.
func (s *server) forwardToLeader(c *gin.Context) {
	defer c.Abort()
	if c.GetHeader(control.HeaderForwarded) != "" {
		abortWith(c, http.StatusServiceUnavailable, control.CodeNotLeader, fmt.Sprintf("node %s is not the leader (the request was forwarded to it); retry", s.ctrl.NodeID()))
		return
	}
	ctx := c.Request.Context()
	giveUp := s.now().Add(s.opts.Limits.LeaderWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(giveUp) {
		giveUp = dl
	}
	repeatable := idempotent(c.Request.Method) && (c.Request.Body == nil || c.Request.Body == http.NoBody || c.Request.ContentLength == 0)
	var failedID, failedAddr string
	// sent is an earlier attempt that reached a leader and lost its answer:
	// repeating it is safe, but when no repeat gets through its outcome is
	// still unknown, never "nothing changed".
	var sent *UnreachableError
	for {
		id, addr := s.awaitLeader(ctx, giveUp, failedAddr)
		if addr == "" && sent != nil {
			abortWith(c, http.StatusBadGateway, control.CodeOutcomeUnknown, fmt.Sprintf(
				"the leader %s (%s) stopped answering after the request reached it (%v) and no leader could be asked again in time: it may or may not have been applied; check before repeating it",
				failedID, failedAddr, sent.Err))
			return
		}
		if addr == "" {
			msg := "the cluster has no leader right now; retry"
			if failedAddr != "" {
				msg = fmt.Sprintf("the leader %s (%s) cannot be reached and no other leader was elected in time; retry", failedID, failedAddr)
			}
			abortWith(c, http.StatusServiceUnavailable, control.CodeNoLeader, msg)
			return
		}
		err := s.fwd.forward(c.Writer, c.Request, addr, func() bool { _, now := s.ctrl.Leader(); return now == addr })
		if err == nil {
			return
		}
		if status, code := classify(err); status == http.StatusRequestEntityTooLarge || status == http.StatusGatewayTimeout {
			abortWith(c, status, code, userMessage(err))
			return
		}
		s.logger.Warn("forward to the leader failed", "leader", id, "api", addr, "path", c.Request.URL.Path, "err", err)
		var ue *UnreachableError
		if errors.As(err, &ue) && ue.Sent && !repeatable {
			s.answerLost(c, err, fmt.Sprintf("the leader %s (%s)", id, addr))
			return
		}
		if ue != nil && ue.Sent {
			sent = ue
		}
		failedID, failedAddr = id, addr
	}
}

// awaitLeader returns the leader's id and API address, waiting until one is
// known or giveUp. After a failed forward to avoid, the same address is
// tried again only once avoidFor has passed (the leader may have been
// briefly unreachable rather than gone); a new leader is taken at once.
func (s *server) awaitLeader(ctx context.Context, giveUp time.Time, avoid string) (string, string) {
	start := s.now()
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		id, addr := s.ctrl.Leader()
		if addr != "" && (addr != avoid || s.now().Sub(start) >= avoidFor) {
			return id, addr
		}
		if !s.now().Before(giveUp) {
			return "", ""
		}
		select {
		case <-ctx.Done():
			return "", ""
		case <-t.C:
		}
	}
}

// avoidFor is how long a leader whose forward just failed is left alone
// before it is tried again.
const avoidFor = 250 * time.Millisecond

// answerLost answers a forward to who that failed after the request may have
// reached it: 502 outcome_unknown, which clients must not retry blindly. It
// reports false (and answers nothing) when err is not such a failure.
func (s *server) answerLost(c *gin.Context, err error, who string) bool {
	var ue *UnreachableError
	if !errors.As(err, &ue) || !ue.Sent || idempotent(c.Request.Method) {
		return false
	}
	abortWith(c, http.StatusBadGateway, control.CodeOutcomeUnknown, fmt.Sprintf(
		"%s stopped answering after the request reached it (%v): it may or may not have been applied; check before repeating it", who, ue.Err))
	return true
}

// idempotent reports whether a request with this method may be repeated
// without changing its effect (RFC 9110 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
