package cloudops

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how often and how patiently a failed provider request is
// tried again. One policy serves both providers.
type RetryPolicy struct {
	// MaxAttempts bounds the tries of one request, the first included. More
	// attempts ride out longer outages but hold the leader's loop longer.
	MaxAttempts int
	// BaseDelay is the wait before the first retry; each retry doubles it.
	// Short recovers quickly from a blip, long spares a struggling API.
	BaseDelay time.Duration
	// MaxDelay caps every wait, a Retry-After answer included, so one rate
	// limit cannot stall the leader for minutes.
	MaxDelay time.Duration
	// Sleep waits d or until ctx ends. Nil uses a timer; tests inject a
	// recorder so they can assert the waits without spending them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetryPolicy returns 5 attempts, 500 ms doubling, capped at 30 s:
// about 7.5 s of backoff in total for a 5xx outage, and enough to honour
// DigitalOcean's and Cloudflare's usual Retry-After of a few seconds.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}
}

// withDefaults fills the zero fields of p from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

// backoff is the wait before retry number n (1 for the first retry):
// BaseDelay doubled n-1 times, capped at MaxDelay, with "equal jitter" (a
// random point in the upper half) so that nodes retrying together spread out.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// sleepCtx waits d or until ctx ends, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryTransport is an http.RoundTripper that retries what is safe to retry:
// 429 answers for every method (the provider refused the request before
// acting on it; the wait is Retry-After, else DigitalOcean's
// ratelimit-reset when ratelimit-remaining is 0, else the backoff), 5xx answers and network errors for idempotent methods (GET,
// HEAD, OPTIONS, PUT, DELETE), and connection failures for any method (the
// request never left). Request bodies are re-sent through req.GetBody; a
// request whose body cannot be rewound is not retried.
type RetryTransport struct {
	base   http.RoundTripper
	policy RetryPolicy
	log    *slog.Logger
}

// NewRetryTransport wraps base (nil: http.DefaultTransport) with policy p
// (zero fields take DefaultRetryPolicy's values). log may be nil.
func NewRetryTransport(base http.RoundTripper, p RetryPolicy, log *slog.Logger) *RetryTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RetryTransport{base: base, policy: p.withDefaults(), log: log}
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			var ok bool
			if r, ok = rewind(req); !ok {
				return nil, errors.New("retry: request body cannot be re-sent")
			}
		}
		resp, err := t.base.RoundTrip(r)
		retry, wait := t.decide(req, resp, err, attempt)
		if !retry || attempt >= t.policy.MaxAttempts {
			return resp, err
		}
		if !rewindable(req) {
			return resp, err
		}
		// A wait that outlives the caller's deadline is pointless: hand back
		// the real answer now instead of a deadline error later.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return resp, err
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
			drain(resp)
		}
		t.log.Debug("cloud request retry", "method", req.Method, "url", req.URL.Redacted(),
			"attempt", attempt, "status", status, "err", err, "wait", wait)
		if serr := t.policy.Sleep(ctx, wait); serr != nil {
			return nil, serr
		}
	}
}

// decide says whether the outcome of attempt n is worth another try, and
// how long to wait first.
func (t *RetryTransport) decide(req *http.Request, resp *http.Response, err error, n int) (bool, time.Duration) {
	if err != nil {
		if req.Context().Err() != nil {
			return false, 0
		}
		if idempotent(req) || neverSent(err) {
			return true, t.policy.backoff(n)
		}
		return false, 0
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && idempotent(req):
	default:
		return false, 0
	}
	now := time.Now()
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok && ra > 0 {
		return true, min(ra, t.policy.MaxDelay)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if reset, ok := rateReset(resp.Header, now); ok {
			return true, min(reset, t.policy.MaxDelay)
		}
	}
	return true, t.policy.backoff(n)
}

// rateReset reads DigitalOcean's rate limit headers, the ones godo decodes
// into Response.Rate: when ratelimit-remaining is 0, the wait until
// ratelimit-reset (a Unix time; the oldest request of the window expires
// then and frees a slot). A reset already past waits nothing more than
// the backoff would, so it does not count.
func rateReset(h http.Header, now time.Time) (time.Duration, bool) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Remaining")))
	if err != nil || rem > 0 {
		return 0, false
	}
	at, err := strconv.ParseInt(strings.TrimSpace(h.Get("Ratelimit-Reset")), 10, 64)
	if err != nil || at <= 0 {
		return 0, false
	}
	wait := time.Unix(at, 0).Sub(now)
	if wait <= 0 {
		return 0, false
	}
	return wait, true
}

// idempotent reports whether repeating req cannot do more than doing it once.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

// neverSent reports whether err happened before the request reached the
// server (the connection could not be made), so any method may be retried.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// rewindable reports whether req's body can be sent again.
func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns a copy of req with a fresh body.
func rewind(req *http.Request) (*http.Request, bool) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r.Body = body
	return r, true
}

// drain reads a little of an abandoned response and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// retryAfter parses a Retry-After value: delay seconds (integer or decimal)
// or an HTTP date, relative to now.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs >= 0 && secs <= 1e6) { // also refuses NaN
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
