package ui

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// leaderGate serves the request when this node leads. A follower redirects
// the browser to the leader's UI, or proxies to it when the browser came in
// on the cluster's UI host name, cannot reach the leader's address, came
// over TLS, is signed in here, or the request is one the page's script
// makes (a fragment or a stream cannot follow a redirect to another
// origin). With no leader: a 503 page that retries by itself.
//
// A browser signed in on this node's address is one that signed in while
// this node led: leadership has moved since (an election, which a busy
// machine makes more likely). Sending it to the new leader's address would
// ask it to sign in again, because its cookie belongs to this address; the
// proxy keeps it on the address, the session and the open pages it has.
func (s *server) leaderGate(c *gin.Context) {
	if s.node.IsLeader() && s.linearize(c) {
		return
	}
	if c.IsAborted() {
		return
	}
	c.Abort()
	if v := c.GetHeader(forwardHeader); v != "" {
		if _, ok := s.sign.parseForward(v, s.now(), s.cfg.ForwardMaxAge); ok {
			// A follower sent this here, but leadership has moved on: never
			// bounce a request around the cluster.
			s.noLeader(c)
			return
		}
	}
	leaderUI, uiHost := s.leaderUI(c.Request.Context())
	if leaderUI == "" {
		s.noLeader(c)
		return
	}
	// The leader's UI port speaks plain HTTP: a browser that came over TLS
	// is proxied, never redirected to http:// (its Secure cookie would not
	// follow, and it would sign in again in the clear).
	if s.secureRequest(c.Request) || s.signedIn(c.Request) || shouldProxy(c.Request, leaderUI, uiHost) {
		s.proxy.serve(c, leaderUI)
		return
	}
	c.Redirect(http.StatusFound, (&url.URL{Scheme: "http", Host: leaderUI}).String()+c.Request.URL.RequestURI())
}

// signedIn reports whether the request carries a valid session cookie for
// this address (checked against the replicated users, like the leader does).
func (s *server) signedIn(r *http.Request) bool {
	_, err := s.readSession(r)
	return err == nil
}

// leaderUI returns the leader's UI address (from the state, else from its
// gossip metadata) and the cluster's UI host name.
func (s *server) leaderUI(ctx context.Context) (addr, uiHost string) {
	id, _ := s.node.Leader()
	if id == "" || id == s.node.NodeID() {
		return "", ""
	}
	s.node.View(func(st *raftfsm.State) {
		if n, ok := st.Nodes[id]; ok {
			addr = n.UI
		}
		uiHost = st.Settings.UIHost
	})
	if addr == "" {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
		defer cancel()
		if info, err := s.node.Cluster(ctx); err == nil {
			for _, m := range info.Members {
				if m.ID == id {
					addr = m.UI
				}
			}
		}
	}
	return addr, uiHost
}

// noLeader shows the page that waits for a leader.
func (s *server) noLeader(c *gin.Context) {
	c.Header("Retry-After", "3")
	if isBackground(c.Request) {
		c.Header("Cache-Control", "no-store")
		c.String(http.StatusServiceUnavailable, "The cluster has no leader right now; retrying.")
		return
	}
	s.render(c, http.StatusServiceUnavailable, &pageData{Name: "noleader", Title: "Waiting for a leader", Assets: s.assets,
		Now: s.now(), NodeID: s.node.NodeID(), Version: s.node.Version()})
}

// shouldProxy decides between a redirect and a proxy for a follower.
func shouldProxy(r *http.Request, leaderUI, uiHost string) bool {
	reqHost := hostOnly(r.Host)
	if uiHost != "" && strings.EqualFold(reqHost, uiHost) {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	if isBackground(r) {
		return true
	}
	return !reachableFrom(reqHost, hostOnly(leaderUI))
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

// addrClass is how far an address reaches.
type addrClass int

const (
	classPublic addrClass = iota
	classPrivate
	classLoopback
	classUnusable
)

func classifyHost(h string) addrClass {
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return classLoopback
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		if h == "" {
			return classUnusable
		}
		return classPublic // a DNS name: assume the browser resolves it
	}
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified() || ip.IsMulticast():
		return classUnusable
	case ip.IsLoopback():
		return classLoopback
	case ip.IsPrivate() || ip.IsLinkLocalUnicast() || netip.MustParsePrefix("100.64.0.0/10").Contains(ip):
		return classPrivate
	}
	return classPublic
}

// reachableFrom guesses whether a browser that reached this node as reqHost
// can reach leaderHost directly: a loopback leader only from loopback, a
// private one only from a private network, a public one from anywhere.
func reachableFrom(reqHost, leaderHost string) bool {
	switch classifyHost(leaderHost) {
	case classLoopback:
		return classifyHost(reqHost) == classLoopback
	case classPrivate:
		return classifyHost(reqHost) == classPrivate
	case classPublic:
		return true
	}
	return false
}

// leaderProxy forwards requests to the leader's UI. The browser's address
// travels in a signed header so the leader's sign-in limit still applies per
// browser.
type leaderProxy struct {
	s         *server
	transport http.RoundTripper
	errorLog  *slog.Logger
}

func newLeaderProxy(s *server, client *http.Client) *leaderProxy {
	tr := http.DefaultTransport
	if client != nil && client.Transport != nil {
		tr = client.Transport
	}
	return &leaderProxy{s: s, transport: tr, errorLog: s.logger}
}

func (p *leaderProxy) serve(c *gin.Context, leaderUI string) {
	// The leader's answer brings its own security headers.
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
		c.Writer.Header().Del(h)
	}
	target := &url.URL{Scheme: "http", Host: leaderUI}
	// The browser's address and scheme as this node sees them: the leader
	// believes the signed header, not the connection (which is this node's).
	client := forwarded{IP: p.s.clientIP(c), HTTPS: p.s.secureRequest(c.Request)}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Proto", client.scheme())
			pr.Out.Header.Set(forwardHeader, p.s.sign.forwardValue(client, p.s.now()))
		},
		Transport:     p.transport,
		FlushInterval: 100 * time.Millisecond,
		ErrorLog:      slog.NewLogLogger(p.errorLog.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the browser went away
			}
			p.s.logger.Warn("ui proxy to the leader failed", "leader", leaderUI, "err", err)
			p.s.noLeader(c)
		},
	}
	rp.ServeHTTP(c.Writer, c.Request)
}
