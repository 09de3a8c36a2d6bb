package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Options configure the UI handler.
type Options struct {
	// Node is the agent (or a fake in tests).
	Node Node
	// SessionKey (32 bytes, derived from the cluster secret) signs session
	// cookies, CSRF tokens and the forwarded-client header. Every node has
	// the same key, so a session survives a leader change.
	SessionKey []byte
	// Logger gets failures and sign-ins; nil discards.
	Logger *slog.Logger
	// Secure gives every cookie the Secure attribute, whatever the request
	// says: for a UI that is only ever reached over TLS, for example behind
	// Cloudflare's "Flexible" TLS. Without it a cookie is Secure when its
	// request came over TLS, directly or through the node's edge (see
	// secureRequest).
	Secure bool
	// HTTPClient's transport proxies requests to the leader's UI. It must
	// not have an overall Timeout (event and log streams are long).
	HTTPClient *http.Client
	// Config holds the timings and limits; the zero value means DefaultConfig().
	Config Config
}

// Config holds the UI's timings and limits.
type Config struct {
	// SessionTTL is how long a sign-in lasts. Longer is more convenient,
	// shorter limits what a stolen cookie is worth.
	SessionTTL time.Duration
	// LoginFailures of one user name from one real client address cost
	// nothing; each further one doubles the wait before that pair may try
	// again, from LoginBackoff up to LoginMaxBackoff (a pair quiet for twice
	// that starts afresh). Other users, and the same user from elsewhere, are
	// not slowed. Lower values slow guessing more but a fumbling user sooner.
	LoginFailures   int
	LoginBackoff    time.Duration
	LoginMaxBackoff time.Duration
	// MaxLoginClients bounds the failure table (memory) under a spray of
	// names and addresses.
	MaxLoginClients int
	// EventInterval is the least time between two change events of one
	// stream: changes in between are coalesced into one. Lower shows changes
	// sooner; higher means fewer page fragment fetches under churn.
	EventInterval time.Duration
	// Heartbeat is how often an idle stream sends a comment, so proxies and
	// browsers do not drop it.
	Heartbeat time.Duration
	// StreamLifetime ends an event stream after this long; the browser
	// reconnects at once and the session is checked again.
	StreamLifetime time.Duration
	// MaxFormBytes bounds an ordinary form; MaxUploadBytes a form with a
	// build context (tar). Larger allows bigger contexts but lets one upload
	// hold more disk and time.
	MaxFormBytes   int64
	MaxUploadBytes int64
	// LogTail is how many old lines a log view starts with; MaxLogBytes
	// caps one log stream; LogLines is how many lines the page keeps (the
	// oldest are dropped so a noisy container cannot freeze the page).
	LogTail     int
	MaxLogBytes int64
	LogLines    int
	// AgentLogLines is how many of the agent's own log lines the admin page shows.
	AgentLogLines int
	// ReadTimeout bounds the I/O a page makes while it renders (cluster
	// membership, node figures): a slow peer shows "unknown", not a hung page.
	ReadTimeout time.Duration
	// ActionTimeout bounds a write (deploy, settings...).
	ActionTimeout time.Duration
	// PollInterval refreshes pages whose figures do not come from the state
	// (node CPU and memory, the agent's log).
	PollInterval time.Duration
	// ForwardMaxAge is how old a follower's signed forwarded-client header may be.
	ForwardMaxAge time.Duration
	// RecentEvents is how many events the overview lists.
	RecentEvents int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		SessionTTL:      12 * time.Hour,
		LoginFailures:   5,
		LoginBackoff:    time.Second,
		LoginMaxBackoff: 15 * time.Minute,
		MaxLoginClients: 10000,
		EventInterval:   250 * time.Millisecond,
		Heartbeat:       15 * time.Second,
		StreamLifetime:  30 * time.Minute,
		MaxFormBytes:    1 << 20,
		MaxUploadBytes:  control.MaxBuildContextBytes,
		LogTail:         200,
		MaxLogBytes:     16 << 20,
		LogLines:        1000,
		AgentLogLines:   200,
		ReadTimeout:     2 * time.Second,
		ActionTimeout:   60 * time.Second,
		PollInterval:    5 * time.Second,
		ForwardMaxAge:   time.Minute,
		RecentEvents:    15,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.SessionTTL, d.SessionTTL)
	seti(&c.LoginFailures, d.LoginFailures)
	set(&c.LoginBackoff, d.LoginBackoff)
	set(&c.LoginMaxBackoff, d.LoginMaxBackoff)
	seti(&c.MaxLoginClients, d.MaxLoginClients)
	set(&c.EventInterval, d.EventInterval)
	set(&c.Heartbeat, d.Heartbeat)
	set(&c.StreamLifetime, d.StreamLifetime)
	set64(&c.MaxFormBytes, d.MaxFormBytes)
	set64(&c.MaxUploadBytes, d.MaxUploadBytes)
	seti(&c.LogTail, d.LogTail)
	set64(&c.MaxLogBytes, d.MaxLogBytes)
	seti(&c.LogLines, d.LogLines)
	seti(&c.AgentLogLines, d.AgentLogLines)
	set(&c.ReadTimeout, d.ReadTimeout)
	set(&c.ActionTimeout, d.ActionTimeout)
	set(&c.PollInterval, d.PollInterval)
	set(&c.ForwardMaxAge, d.ForwardMaxAge)
	seti(&c.RecentEvents, d.RecentEvents)
	return c
}

// server is the UI's state: the node, the templates, the keys and the limiter.
type server struct {
	node    Node
	logger  *slog.Logger
	cfg     Config
	secure  bool
	sign    signer
	limiter *loginLimiter
	tmpl    *templates
	proxy   *leaderProxy
	assets  assetVersions
	// now is the clock (tests move it).
	now func() time.Time
	// overviews and serviceLists are the page models that only the state
	// (and the leader) decide, built once per state version and shared by
	// every page and live fragment that shows them.
	overviews    *raftfsm.ViewCache[overviewView]
	serviceLists *raftfsm.ViewCache[servicesView]
}

// New builds the UI handler.
func New(o Options) (http.Handler, error) {
	s, err := newServer(o)
	if err != nil {
		return nil, err
	}
	return s.routes(), nil
}

func newServer(o Options) (*server, error) {
	if o.Node == nil {
		return nil, errors.New("ui: no node")
	}
	if len(o.SessionKey) < 32 {
		return nil, fmt.Errorf("ui: session key has %d bytes, want at least 32", len(o.SessionKey))
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config.withDefaults()
	tmpl, err := loadTemplates()
	if err != nil {
		return nil, err
	}
	assets, err := hashAssets()
	if err != nil {
		return nil, err
	}
	s := &server{
		node:    o.Node,
		logger:  logger,
		cfg:     cfg,
		secure:  o.Secure,
		sign:    signer{key: append([]byte(nil), o.SessionKey...)},
		limiter: newLoginLimiter(cfg.LoginFailures, cfg.LoginBackoff, cfg.LoginMaxBackoff, cfg.MaxLoginClients),
		tmpl:    tmpl,
		assets:  assets,
		now:     time.Now,

		overviews:    raftfsm.NewViewCache[overviewView](4),
		serviceLists: raftfsm.NewViewCache[servicesView](1),
	}
	s.proxy = newLeaderProxy(s, o.HTTPClient)
	return s, nil
}

// routes builds the Gin engine.
func (s *server) routes() *gin.Engine {
	e := gin.New()
	e.ContextWithFallback = true
	e.RedirectTrailingSlash = true
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	_ = e.SetTrustedProxies(nil) // only fails on bad CIDRs; nil has none
	e.Use(s.recover, s.securityHeaders)

	e.GET("/static/*file", s.static)
	e.GET("/favicon.ico", s.favicon)

	g := e.Group("/", s.leaderGate)
	g.GET("/login", s.loginPage)
	g.POST("/login", s.limitBody(false), s.login)

	auth := g.Group("/", s.requireSession)
	auth.GET("/", s.page("overview", s.buildOverview))
	auth.GET("/infrastructure", s.page("infrastructure", s.buildInfrastructure))
	auth.GET("/services", s.page("services", s.buildServices))
	auth.GET("/s/:ws/:project/:env/:service", s.page("service", s.buildService))
	auth.GET("/s/:ws/:project/:env/:service/logs", s.serviceLogs)
	auth.GET("/snapshots", s.page("snapshots", s.buildSnapshots))
	auth.GET("/events", s.events)

	admin := auth.Group("/", s.requireRole(raftfsm.RoleAdmin))
	admin.GET("/admin", s.page("admin", s.buildAdmin))
	admin.GET("/notifications", s.page("notifications", s.buildNotifications))
	admin.GET("/setup", s.setupPage)

	post := func(level raftfsm.Role, upload bool, path string, h gin.HandlerFunc) {
		g.POST(path, s.limitBody(upload), s.requireSession, s.requireCSRF, s.requireRole(level), h)
	}
	post(raftfsm.RoleViewer, false, "/logout", s.logout)
	post(raftfsm.RoleDeployer, true, "/services/deploy", s.deploy)
	post(raftfsm.RoleDeployer, false, "/s/:ws/:project/:env/:service/redeploy", s.redeploy)
	post(raftfsm.RoleDeployer, false, "/s/:ws/:project/:env/:service/restart", s.restart)
	post(raftfsm.RoleDeployer, false, "/s/:ws/:project/:env/:service/undeploy", s.undeploy)
	post(raftfsm.RoleAdmin, false, "/nodes/add", s.addNodes)
	post(raftfsm.RoleAdmin, false, "/nodes/:id/remove", s.removeNode)
	post(raftfsm.RoleAdmin, false, "/nodes/:id/reboot", s.rebootNode)
	post(raftfsm.RoleAdmin, true, "/snapshots", s.createSnapshot)
	post(raftfsm.RoleAdmin, false, "/admin/users", s.putUser)
	post(raftfsm.RoleAdmin, false, "/admin/users/:name/delete", s.deleteUser)
	post(raftfsm.RoleAdmin, false, "/admin/settings", s.updateSettings)
	post(raftfsm.RoleAdmin, false, "/notifications", s.putWebhook)
	post(raftfsm.RoleAdmin, false, "/notifications/:id/delete", s.deleteWebhook)
	post(raftfsm.RoleAdmin, false, "/setup/digitalocean", s.setupDigitalOcean)
	post(raftfsm.RoleAdmin, false, "/setup/cloudflare", s.setupCloudflare)

	e.NoRoute(s.leaderGate, func(c *gin.Context) {
		s.renderError(c, http.StatusNotFound, "Page not found", "There is no page at "+c.Request.URL.Path+".")
	})
	e.NoMethod(func(c *gin.Context) {
		s.renderError(c, http.StatusMethodNotAllowed, "Not allowed", c.Request.Method+" is not allowed here.")
	})
	return e
}
