package ui

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// secureRequest reports whether the browser reached the UI over TLS: its
// cookies then get the Secure attribute, and a follower keeps it on TLS
// rather than redirecting it to the leader's plain-HTTP port. In order:
//
//   - Options.Secure says every browser comes over TLS;
//   - the connection itself is TLS (r.TLS);
//   - a follower proxied the request and vouches for the scheme in its
//     signed forward header (the follower decided by these same rules);
//   - a proxy on this machine, which is the node's edge (nginx or the
//     built-in proxy), says X-Forwarded-Proto: https.
//
// X-Forwarded-Proto is believed only from this machine because the edge
// always overwrites it with the scheme the edge itself was reached by (nginx
// `proxy_set_header X-Forwarded-Proto $scheme`), so a browser cannot get a
// value through the edge; from anywhere else the header is whatever the
// client wrote. Behind Cloudflare the edge's scheme is Cloudflare's scheme
// to the origin: with "Full" TLS that is https; with "Flexible" it is http,
// and the cookies go without Secure (they still work, only less strictly),
// unless Options.Secure is set. Cloudflare's own headers (CF-Visitor) pass
// through the edge unchanged, so they are never trusted.
func (s *server) secureRequest(r *http.Request) bool {
	if s.secure || r.TLS != nil {
		return true
	}
	if v := r.Header.Get(forwardHeader); v != "" {
		if f, ok := s.sign.parseForward(v, s.now(), s.cfg.ForwardMaxAge); ok {
			return f.HTTPS
		}
	}
	return fromThisHost(r) && forwardedHTTPS(r.Header)
}

// fromThisHost reports whether the request's peer runs on this machine: a
// loopback address, or the very address the connection came in on (nginx
// proxying to the node's advertised address connects from it).
func fromThisHost(r *http.Request) bool {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := remote.Addr().Unmap()
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	l, err := netip.ParseAddrPort(local.String())
	return err == nil && l.Addr().Unmap() == ip
}

// forwardedHTTPS reads X-Forwarded-Proto: the first proxy in a chain is the
// one the browser talked to.
func forwardedHTTPS(h http.Header) bool {
	first, _, _ := strings.Cut(h.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(first), "https")
}
