package fakeapi

import (
	"net/http"
	"strconv"
	"time"
)

// DefaultRateLimit is DigitalOcean's hourly request budget, reported in
// ratelimit-limit when Options.RateLimit is 0.
const DefaultRateLimit = 5000

// rateWindow counts DigitalOcean requests in the current hour, the way the
// ratelimit-* headers describe it.
type rateWindow struct {
	start time.Time
	used  int
}

// rateHeadersLocked counts r against the hourly budget and sets
// ratelimit-limit, ratelimit-remaining and ratelimit-reset on w, as
// DigitalOcean does on every answer. It reports false when the budget is
// spent and enforced (Options.RateLimit > 0): the caller answers 429.
func (s *Server) rateHeadersLocked(w http.ResponseWriter, now time.Time) bool {
	limit := s.opts.RateLimit
	enforced := limit > 0
	if !enforced {
		limit = DefaultRateLimit
	}
	if s.rate.start.IsZero() || now.Sub(s.rate.start) >= time.Hour {
		s.rate = rateWindow{start: now}
	}
	s.rate.used++
	remaining := max(limit-s.rate.used, 0)
	reset := s.rate.start.Add(time.Hour)
	h := w.Header()
	h.Set("Ratelimit-Limit", strconv.Itoa(limit))
	h.Set("Ratelimit-Remaining", strconv.Itoa(remaining))
	h.Set("Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	return !enforced || s.rate.used <= limit
}

// rateLimited marks an answer as a 429 of DigitalOcean's: nothing left,
// and the reset (whole seconds, rounded up) after retry.
func rateLimited(w http.ResponseWriter, now time.Time, retry time.Duration) {
	h := w.Header()
	h.Set("Ratelimit-Remaining", "0")
	at := now.Add(retry)
	reset := at.Unix()
	if at.Nanosecond() > 0 {
		reset++
	}
	h.Set("Ratelimit-Reset", strconv.FormatInt(reset, 10))
}
