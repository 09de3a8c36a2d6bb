package ui

import (
	"sync"
	"time"
)

// loginLimiter counts failed sign-ins per client IP in a sliding window.
// It has no goroutine: old entries are dropped as they are met, and the whole
// table is swept when it grows past its bound.
type loginLimiter struct {
	max        int
	window     time.Duration
	maxClients int

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newLoginLimiter(max int, window time.Duration, maxClients int) *loginLimiter {
	return &loginLimiter{max: max, window: window, maxClients: maxClients, failures: map[string][]time.Time{}}
}

// recent returns ip's failures inside the window, dropping older ones. Caller holds mu.
func (l *loginLimiter) recent(ip string, now time.Time) []time.Time {
	f := l.failures[ip]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, ip)
		return nil
	}
	l.failures[ip] = f
	return f
}

// Blocked reports whether ip used up its failures, and when it may try again.
func (l *loginLimiter) Blocked(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(ip, now)
	if len(f) < l.max {
		return false, 0
	}
	return true, l.window - now.Sub(f[len(f)-l.max])
}

// Fail records a failed sign-in from ip.
func (l *loginLimiter) Fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.failures[ip]; !known && len(l.failures) >= l.maxClients {
		for k := range l.failures {
			l.recent(k, now)
		}
		if len(l.failures) >= l.maxClients {
			// Still full of live entries: forget an arbitrary one rather than grow.
			for k := range l.failures {
				delete(l.failures, k)
				break
			}
		}
	}
	f := l.recent(ip, now)
	if len(f) >= l.max {
		f = f[len(f)-l.max+1:]
	}
	l.failures[ip] = append(f, now)
}

// Succeed forgets ip's failures after a correct sign-in.
func (l *loginLimiter) Succeed(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, ip)
}
