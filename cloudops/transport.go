package cloudops

import (
	"net/http"
	"time"
)

// DefaultRequestTimeout bounds one attempt of a provider request until the
// answer's headers arrive. Both APIs answer in well under a second; 30 s
// rides out a slow moment, and a hung connection fails that attempt (a GET
// is then retried) instead of holding the leader's loop until its deadline.
const DefaultRequestTimeout = 30 * time.Second

// NewHTTPTransport returns a copy of http.DefaultTransport with timeouts on
// every step that can hang before an answer starts: the TLS handshake and
// the wait for the response headers, both bounded by requestTimeout
// (dialling already has one). Clients built without DOConfig.HTTPClient or
// CFConfig.HTTPClient make one each; a caller that builds clients often
// (the leader, every round) shares one, and with it its connection pool.
//
// It is deliberately not http.Client.Timeout, which also cuts off a body
// still streaming: neither API long-polls today, but a slow listing or a
// future watch keeps working, and the caller's context bounds the whole
// call.
func NewHTTPTransport(requestTimeout time.Duration) *http.Transport {
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	return boundedTransport(http.DefaultTransport, requestTimeout).(*http.Transport)
}

// boundedTransport returns base with the timeouts of NewHTTPTransport. An
// *http.Transport that has both already is returned as it is (its pool is
// shared); one that lacks either is copied, never modified, and keeps the
// timeouts it has. Any other RoundTripper (a test's) is the caller's
// business and is returned as it is.
func boundedTransport(base http.RoundTripper, timeout time.Duration) http.RoundTripper {
	t, ok := base.(*http.Transport)
	if !ok || (t.ResponseHeaderTimeout > 0 && t.TLSHandshakeTimeout > 0) {
		return base
	}
	t = t.Clone()
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = timeout
	}
	if t.TLSHandshakeTimeout == 0 {
		t.TLSHandshakeTimeout = min(timeout, 10*time.Second)
	}
	return t
}
