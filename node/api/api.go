package api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Options configure the API handler.
type Options struct {
	// Controller is the node (node.Agent) or a fake.
	Controller control.Controller
	// APIKey is required on every route but GET /ping; compared in constant time.
	APIKey string
	// RequireAuthAlways keeps the key required from the trusted networks too.
	// The key is only ever skipped for clients in TrustedNets while
	// RequireAuthAlways is false; with no TrustedNets (the default) every
	// client needs it, whatever this says.
	RequireAuthAlways bool
	// TrustedNets are the private networks (the VPC) whose clients may skip
	// the key when RequireAuthAlways is false.
	TrustedNets []netip.Prefix
	// LookupHost resolves a target's name (a webhook's host, a registry)
	// before it is stored, so a name that points inside the cluster is
	// refused like the address itself; nil is the system resolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	// Logger gets request failures; nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds JSON request bodies (default 1 MiB).
	MaxBodyBytes int64
	// HTTPClient forwards requests to the leader and proxies them to the
	// container's node: in an agent, over mutual TLS with the node's
	// certificate. It must not have an overall Timeout (log streams are
	// long); the default dials in 3 s.
	HTTPClient *http.Client
	// VerifyNode checks a TLS client certificate: a valid, unrevoked node
	// certificate of the cluster CA, returning its node id. The internal
	// routes (AccessNode) refuse every caller it does not accept; nil
	// accepts none.
	VerifyNode func(tls.ConnectionState) (nodeID string, err error)
	// Enroller serves the join and certificate routes; nil answers them
	// 503 unavailable.
	Enroller control.Enroller
	// Extra are routes other packages add (e.g. /metrics); they get the same
	// auth, limits and documentation as the built-in ones.
	Extra []Route
	// Limits are the other limits and timings; zero fields take DefaultLimits.
	Limits Limits
}

// Limits are the API's size limits, rates and timings.
type Limits struct {
	// MaxUploadBytes bounds an uploaded build context. Larger allows bigger
	// contexts but lets one upload hold more disk and time.
	MaxUploadBytes int64
	// MaxStateBytes bounds a state document for import; it is decoded in
	// memory, so this is also the memory one import may take.
	MaxStateBytes int64
	// MaxLogBytes caps one log stream: a noisy container cannot flood a client.
	MaxLogBytes int64
	// PingRate and PingBurst limit GET /ping per client IP: the leader pings
	// every node each health interval, far below this.
	PingRate  rate.Limit
	PingBurst int
	// AuthFailures per minute per real client address (the edge's X-Real-IP
	// from the local edge) before its further failures get 429 (it recovers
	// one attempt every minute/AuthFailures). A valid credential is always
	// served, whatever its address did. Lower slows guessing more.
	AuthFailures int
	// MaxWait caps ?wait= of a blocking read; DefaultWait is used when only
	// ?index= is given. Longer waits mean fewer requests but hold a
	// connection and a goroutine each.
	MaxWait     time.Duration
	DefaultWait time.Duration
	// WriteTimeout bounds a write whose caller sent no deadline, so a stuck
	// leader cannot hold requests forever.
	WriteTimeout time.Duration
	// MaxClients bounds the per-IP limiter table; beyond it idle entries are
	// dropped first.
	MaxClients int
	// LeaderWait is how long a write through a follower waits for a leader
	// when none is known, or for a new one when the leader cannot be
	// reached, before it is answered no_leader (never beyond the request's
	// own deadline). An election takes well under a second; longer rides out
	// slower ones but holds the caller longer when there is no quorum.
	LeaderWait time.Duration
	// ReadWait bounds how long a read waits for this node to apply the
	// index it must reflect (a linearizable read's read index, or ?index=)
	// when the caller's deadline is later or absent; then it is answered
	// catching_up. Longer rides out a slow replica; shorter sends the
	// caller to another node sooner.
	ReadWait time.Duration
	// TokenUseFlush is how often a node sends the API tokens' last uses to
	// the leader (one raft write per interval at most, whatever the request
	// rate). Shorter shows fresher last-use times for more writes.
	TokenUseFlush time.Duration
}

// DefaultLimits returns the defaults of every limit.
func DefaultLimits() Limits {
	return Limits{
		MaxUploadBytes: control.MaxBuildContextBytes,
		MaxStateBytes:  32 << 20,
		MaxLogBytes:    16 << 20,
		PingRate:       20,
		PingBurst:      40,
		AuthFailures:   10,
		MaxWait:        10 * time.Minute,
		DefaultWait:    control.DefaultBlockingWait,
		WriteTimeout:   60 * time.Second,
		MaxClients:     10000,
		LeaderWait:     3 * time.Second,
		ReadWait:       10 * time.Second,
		TokenUseFlush:  30 * time.Second,
	}
}

// DefaultMaxBodyBytes is the default bound of a JSON request body.
const DefaultMaxBodyBytes = 1 << 20

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.ResponseHeaderTimeout = 0
		o.HTTPClient = &http.Client{Transport: tr}
	}
	d := DefaultLimits()
	l := &o.Limits
	if l.MaxUploadBytes <= 0 {
		l.MaxUploadBytes = d.MaxUploadBytes
	}
	if l.MaxStateBytes <= 0 {
		l.MaxStateBytes = d.MaxStateBytes
	}
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = d.MaxLogBytes
	}
	if l.PingRate <= 0 {
		l.PingRate = d.PingRate
	}
	if l.PingBurst <= 0 {
		l.PingBurst = d.PingBurst
	}
	if l.AuthFailures <= 0 {
		l.AuthFailures = d.AuthFailures
	}
	if l.MaxWait <= 0 {
		l.MaxWait = d.MaxWait
	}
	if l.DefaultWait <= 0 {
		l.DefaultWait = min(d.DefaultWait, l.MaxWait)
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.MaxClients <= 0 {
		l.MaxClients = d.MaxClients
	}
	if l.LeaderWait <= 0 {
		l.LeaderWait = d.LeaderWait
	}
	if l.ReadWait <= 0 {
		l.ReadWait = d.ReadWait
	}
	if l.TokenUseFlush <= 0 {
		l.TokenUseFlush = d.TokenUseFlush
	}
	return o
}

// server holds what every handler shares.
type server struct {
	ctrl      control.Controller
	opts      Options
	logger    *slog.Logger
	keyHash   [32]byte
	fwd       *forwarder
	pingLimit *ipLimiter
	authFail  *ipLimiter
	uses      *tokenUses
	now       func() time.Time
	reads     readBatches
	// views caches encoded read answers per state version (see
	// cachedView).
	views *raftfsm.ViewCache[cachedView]
}

func newServer(o Options) *server {
	o = o.withDefaults()
	logger, ctrl := o.Logger, o.Controller
	record := func(ctx context.Context, uses map[string]time.Time) error { return ctrl.RecordTokenUse(ctx, uses) }
	return &server{
		ctrl:      o.Controller,
		opts:      o,
		logger:    o.Logger,
		keyHash:   sha256.Sum256([]byte(o.APIKey)),
		fwd:       &forwarder{client: o.HTTPClient, logger: o.Logger},
		pingLimit: newIPLimiter(o.Limits.PingRate, o.Limits.PingBurst, o.Limits.MaxClients),
		authFail:  newIPLimiter(rate.Every(time.Minute/time.Duration(o.Limits.AuthFailures)), o.Limits.AuthFailures, o.Limits.MaxClients),
		reads:     newReadBatches(o.Limits.LeaderWait + o.Limits.ReadWait),
		views:     raftfsm.NewViewCache[cachedView](maxCachedViews),
		uses: newTokenUses(o.Limits.TokenUseFlush, record, func(err error) {
			logger.Warn("record API token uses", "err", err)
		}),
		now: time.Now,
	}
}

// New returns the API handler. It fails when the options are unusable,
// including a route table Gin cannot register (its router panics on
// conflicting paths; that becomes an error here).
func New(o Options) (h http.Handler, err error) {
	if o.Controller == nil {
		return nil, errors.New("api: no controller")
	}
	if o.APIKey == "" {
		return nil, errors.New("api: no API key")
	}
	s := newServer(o)
	routes := s.routes()
	if err := checkRoutes(routes); err != nil {
		return nil, err
	}
	e := gin.New()
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	e.Use(s.requestID, gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.logger.ErrorContext(c.Request.Context(), "api handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", rec)
		if !c.Writer.Written() {
			abortWith(c, http.StatusInternalServerError, control.CodeInternal, "internal error; the agent's log has the details")
			return
		}
		c.Abort()
	}))
	e.NoRoute(s.authenticate, func(c *gin.Context) {
		abortWith(c, http.StatusNotFound, control.CodeNotFound, fmt.Sprintf("no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(s.authenticate, func(c *gin.Context) {
		abortWith(c, http.StatusMethodNotAllowed, control.CodeNotAllowed, fmt.Sprintf("%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	defer func() {
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("api: route table: %v", p)
		}
	}()
	for _, r := range routes {
		e.Handle(r.Method, ginPath(r.Path), s.chain(r)...)
	}
	return e, nil
}

// checkRoutes refuses a table with a duplicate or incomplete route.
func checkRoutes(routes []Route) error {
	seen := map[string]bool{}
	for _, r := range routes {
		if r.Method == "" || r.Path == "" || r.Handler == nil || r.Summary == "" {
			return fmt.Errorf("api: route %s %s: method, path, summary and handler are required", r.Method, r.Path)
		}
		k := r.Method + " " + r.Path
		if seen[k] {
			return fmt.Errorf("api: route %s registered twice", k)
		}
		seen[k] = true
	}
	return nil
}
