package edge

import (
	"context"
	"errors"
	"time"
)

// Route sends one public host to the live generation's containers of a
// service.
type Route struct {
	// Host is the public host name, lowercase ASCII; a wildcard is allowed
	// as the whole leftmost label ("*.example.com").
	Host string
	// Service is the service's key, "ws/project/env/service"; it names the
	// route in access logs and errors.
	Service string
	// Upstreams are the "ip:port" addresses of the containers (their
	// published ports), at least one. Requests go round-robin across them.
	Upstreams []string
	// RedirectHTTPS answers plain HTTP requests with a 308 to the same URL
	// over HTTPS, when the edge has a TLS listener and a certificate for
	// the host (otherwise it is ignored).
	RedirectHTTPS bool
}

// Cert is an origin certificate (for example Cloudflare's) for one zone:
// every host equal to or under Zone is also served over TLS.
type Cert struct {
	// Zone is the DNS zone the certificate covers, such as "example.com".
	Zone string
	// CertPEM is the certificate chain, PEM encoded.
	CertPEM []byte
	// KeyPEM is the private key, PEM encoded.
	KeyPEM []byte
}

// Config is everything an edge serves: the service routes, the UI host and
// the certificates. Apply replaces the whole previous Config.
type Config struct {
	// Routes has one entry per public host.
	Routes []Route
	// UIHost is the UI's public host name, routed to UIUpstream (optional;
	// both or neither).
	UIHost string
	// UIUpstream is the "ip:port" of the local web UI.
	UIUpstream string
	// Certs are used only when the edge has a TLS listener: hosts under a
	// zone (the longest matching zone wins) get TLS with its certificate.
	Certs []Cert
}

// Edge routes client traffic by host name. Implementations: Nginx, Proxy.
type Edge interface {
	// Apply validates cfg and makes it the served config, atomically. On
	// any failure the previous config keeps serving and the error says why
	// (errors.Is(err, raftfsm.ErrInvalid) for bad input, ErrRejected when
	// the server refused it).
	Apply(ctx context.Context, cfg Config) error
	// Addr is the plain HTTP listen address.
	Addr() string
	// Close releases the edge. The proxy stops serving; an nginx master
	// keeps serving (see Nginx.Stop).
	Close(ctx context.Context) error
}

var (
	// ErrRejected marks an Apply that passed validation but that the edge's
	// server refused (nginx -t or the reload failed); the previous config
	// still serves and the error carries the server's own message.
	ErrRejected = errors.New("edge config rejected")
	// ErrClosed is returned by calls on an edge after Close or Stop.
	ErrClosed = errors.New("edge closed")
	// ErrNoNginx is returned by NewNginx when no nginx binary is given or
	// found.
	ErrNoNginx = errors.New("nginx not found")
)

// Timings are the edge's timeouts and waits. A zero field takes its value
// from DefaultTimings, so callers set only what they change.
type Timings struct {
	// ConnectTimeout bounds connecting to one upstream. Shorter moves on to
	// the next upstream sooner when a container hangs; longer tolerates a
	// backend slow to accept under load.
	ConnectTimeout time.Duration
	// ReadTimeout is the longest wait between two reads from an upstream
	// (the response header included; for nginx also an idle websocket).
	// Shorter frees the edge from stuck backends; longer lets slow
	// endpoints and quiet websockets live.
	ReadTimeout time.Duration
	// SendTimeout is the longest wait between two writes to an upstream
	// (nginx), and for the built-in proxy the longest a write to a client
	// may block (nginx's send_timeout is 60 s too).
	SendTimeout time.Duration
	// HeaderTimeout bounds reading a client's request header: shorter
	// sheds slow-loris clients, longer tolerates bad links.
	HeaderTimeout time.Duration
	// IdleTimeout is how long an idle client keep-alive connection stays
	// open: longer saves handshakes, shorter saves sockets.
	IdleTimeout time.Duration
	// FailTimeout is how long an upstream that refused a connection is
	// skipped while others remain. Longer avoids retrying a dead container;
	// shorter brings a recovered one back sooner.
	FailTimeout time.Duration
	// ReloadTimeout bounds waiting for nginx to confirm a reload or a
	// start (it retries a busy port for 2.5 s before giving up).
	ReloadTimeout time.Duration
	// StopTimeout is how long Stop waits for a graceful quit before it
	// terminates nginx.
	StopTimeout time.Duration
	// WorkerShutdownTimeout is how long nginx's old workers keep
	// long-lived connections (websockets) after a reload. Longer is kinder
	// to those clients; shorter frees the memory of old generations sooner
	// when reloads are frequent.
	WorkerShutdownTimeout time.Duration
}

// DefaultTimings returns the timings used for every zero field.
func DefaultTimings() Timings {
	return Timings{
		ConnectTimeout:        5 * time.Second,
		ReadTimeout:           60 * time.Second,
		SendTimeout:           60 * time.Second,
		HeaderTimeout:         60 * time.Second,
		IdleTimeout:           75 * time.Second,
		FailTimeout:           10 * time.Second,
		ReloadTimeout:         15 * time.Second,
		StopTimeout:           10 * time.Second,
		WorkerShutdownTimeout: 60 * time.Second,
	}
}

// withDefaults fills every zero field from DefaultTimings.
func (t Timings) withDefaults() Timings {
	d := DefaultTimings()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&t.ConnectTimeout, d.ConnectTimeout)
	fill(&t.ReadTimeout, d.ReadTimeout)
	fill(&t.SendTimeout, d.SendTimeout)
	fill(&t.HeaderTimeout, d.HeaderTimeout)
	fill(&t.IdleTimeout, d.IdleTimeout)
	fill(&t.FailTimeout, d.FailTimeout)
	fill(&t.ReloadTimeout, d.ReloadTimeout)
	fill(&t.StopTimeout, d.StopTimeout)
	fill(&t.WorkerShutdownTimeout, d.WorkerShutdownTimeout)
	return t
}

// DefaultClientMaxBodySize is the largest request body an edge accepts when
// the options do not say (larger gets 413).
const DefaultClientMaxBodySize = 64 << 20
