package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP. The table is bounded: when it
// is full, entries whose bucket has refilled (they are no different from a
// new one) go first, then the least recently seen.
type ipLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*ipEntry
}

type ipEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(limit rate.Limit, burst, maxClients int) *ipLimiter {
	return &ipLimiter{limit: limit, burst: burst, max: maxClients, m: map[string]*ipEntry{}}
}

// entryLocked returns the bucket of ip, making room for it if needed.
func (l *ipLimiter) entryLocked(ip string, now time.Time) *ipEntry {
	e, ok := l.m[ip]
	if !ok {
		if len(l.m) >= l.max {
			l.pruneLocked(now)
		}
		e = &ipEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[ip] = e
	}
	e.seen = now
	return e
}

func (l *ipLimiter) pruneLocked(now time.Time) {
	for ip, e := range l.m {
		if e.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, ip)
		}
	}
	for len(l.m) >= l.max {
		var oldest string
		var at time.Time
		for ip, e := range l.m {
			if oldest == "" || e.seen.Before(at) {
				oldest, at = ip, e.seen
			}
		}
		delete(l.m, oldest)
	}
}

// allow takes one token for ip; when none is left it says how long until one is.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entryLocked(ip, now)
	if e.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.untilToken(e, now)
}

// blocked reports, without taking a token, whether ip has none left.
func (l *ipLimiter) blocked(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[ip]
	if !ok || e.lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.untilToken(e, now)
}

// take uses one token of ip, going below zero is not possible: a client
// already blocked stays blocked until a token refills.
func (l *ipLimiter) take(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entryLocked(ip, now).lim.AllowN(now, 1)
}

func (l *ipLimiter) untilToken(e *ipEntry, now time.Time) time.Duration {
	missing := 1 - e.lim.TokensAt(now)
	if missing <= 0 || l.limit <= 0 {
		return 0
	}
	return time.Duration(missing / float64(l.limit) * float64(time.Second))
}

// retryAfterSeconds renders a wait as a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// size is the number of clients tracked, for tests.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// realClientAddr is the address the failure and ping limiters count a
// request against: the edge's X-Real-IP when the request comes from the
// local edge (a loopback peer, or the very address the connection came in
// on, which is where the node's nginx connects from), else the peer's own
// address. From anywhere else the header is ignored: a client cannot pick
// the bucket it is counted in. A container on the node connects from its
// bridge address, not from either, so it is counted as itself.
func realClientAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	ip := peer.Addr().Unmap()
	if !fromLocalEdge(r, ip) {
		return ip
	}
	if v := strings.TrimSpace(r.Header.Get("X-Real-IP")); v != "" {
		if real, err := netip.ParseAddr(v); err == nil {
			return real.Unmap()
		}
	}
	return ip
}

// fromLocalEdge reports whether peer is this host: loopback, or the local
// address of the connection.
func fromLocalEdge(r *http.Request, peer netip.Addr) bool {
	if peer.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	l, err := netip.ParseAddrPort(local.String())
	return err == nil && l.Addr().Unmap() == peer
}
