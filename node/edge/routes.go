package edge

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// table is the built-in proxy's routing state for one applied Config. It is
// immutable once built, except for the round-robin counters, the upstream
// failure marks and the in-flight count; Apply swaps whole tables.
type table struct {
	exact map[string]*route // host -> route
	wild  map[string]*route // "*.example.com" -> route
	certs []zoneCert

	// inflight counts requests being served with this table; once the
	// table is retired and the count reaches zero, idle is closed (Drain).
	inflight atomic.Int64
	retired  atomic.Bool
	idleOnce sync.Once
	idle     chan struct{}
}

// route is one host's destination.
type route struct {
	host      string
	service   string // for logs
	tls       bool   // the host is under a certificate's zone
	redirect  bool   // plain HTTP gets a 308 to HTTPS (only with tls)
	upstreams []*upstream
	next      atomic.Uint64 // round-robin position
}

// upstream is one container address and when it may be tried again after a
// refused connection.
type upstream struct {
	addr      string
	downUntil atomic.Int64 // unix nanoseconds
}

// zoneCert is a parsed certificate and the zone it covers.
type zoneCert struct {
	zone string
	cert *tls.Certificate
}

// newTable builds a table from a validated Config.
func newTable(cfg Config) (*table, error) {
	t := &table{exact: map[string]*route{}, wild: map[string]*route{}, idle: make(chan struct{})}
	for _, c := range cfg.Certs {
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, invalidf("certificate for zone %q: %v", c.Zone, err)
		}
		t.certs = append(t.certs, zoneCert{zone: c.Zone, cert: &kp})
	}
	add := func(host, service string, addrs []string, redirect bool) {
		r := &route{host: host, service: service, tls: zoneFor(strings.TrimPrefix(host, "*."), cfg.Certs) >= 0}
		r.redirect = redirect && r.tls
		for _, a := range addrs {
			r.upstreams = append(r.upstreams, &upstream{addr: a})
		}
		if strings.HasPrefix(host, "*.") {
			t.wild[host] = r
		} else {
			t.exact[host] = r
		}
	}
	for _, r := range cfg.Routes {
		add(r.Host, r.Service, r.Upstreams, r.RedirectHTTPS)
	}
	if cfg.UIHost != "" {
		add(cfg.UIHost, "ui", []string{cfg.UIUpstream}, false)
	}
	return t, nil
}

// lookup finds the route for a normalised host the way nginx picks a
// server_name: the exact name first, then the longest wildcard.
func (t *table) lookup(host string) *route {
	if r, ok := t.exact[host]; ok {
		return r
	}
	for i := strings.IndexByte(host, '.'); i >= 0; {
		if r, ok := t.wild["*"+host[i:]]; ok {
			return r
		}
		j := strings.IndexByte(host[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil
}

// certFor returns the certificate of the longest zone that covers an SNI
// name, or nil.
func (t *table) certFor(name string) *tls.Certificate {
	var best *zoneCert
	for i := range t.certs {
		c := &t.certs[i]
		if name == c.zone || strings.HasSuffix(name, "."+c.zone) {
			if best == nil || len(c.zone) > len(best.zone) {
				best = c
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.cert
}

// retire marks the table replaced; idle closes once no request uses it.
func (t *table) retire() {
	t.retired.Store(true)
	if t.inflight.Load() == 0 {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

// release ends one request's use of the table.
func (t *table) release() {
	if t.inflight.Add(-1) == 0 && t.retired.Load() {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

// order returns the upstreams to try for one request: round-robin from the
// route's next position, those marked down (a refused connection within
// the fail timeout) moved to the end, so a request still has somewhere to
// go when all are marked.
func (r *route) order(now time.Time) []*upstream {
	n := len(r.upstreams)
	start := int(r.next.Add(1)-1) % n
	out := make([]*upstream, 0, n)
	var down []*upstream
	for i := range n {
		u := r.upstreams[(start+i)%n]
		if u.downUntil.Load() > now.UnixNano() {
			down = append(down, u)
			continue
		}
		out = append(out, u)
	}
	return append(out, down...)
}

// normalizeHost turns a Host header into the name routes are keyed by:
// lowercase, port and trailing dot removed (as nginx's $host).
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return h
}

// String describes a route for logs.
func (r *route) String() string {
	addrs := make([]string, len(r.upstreams))
	for i, u := range r.upstreams {
		addrs[i] = u.addr
	}
	return fmt.Sprintf("%s -> %s %v", r.host, r.service, addrs)
}

// httpsURL is the HTTPS URL of host and uri on the TLS listener tlsAddr
// (its port is left out when it is 443).
func httpsURL(host, tlsAddr, uri string) string {
	if _, port, err := net.SplitHostPort(tlsAddr); err == nil && port != "443" {
		host += ":" + port
	}
	return "https://" + host + uri
}
