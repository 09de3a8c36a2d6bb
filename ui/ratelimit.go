package ui

import (
	"sync"
	"time"
)

// loginLimiter slows failed sign-ins per (user name, real client address)
// with exponential backoff: the first `free` failures of a pair cost
// nothing, then each further one doubles the wait before the pair may try
// again (base, 2*base, 4*base, ... up to max). Keying on the pair means a
// guesser behind the address everyone shares (the edge) slows only its own
// guesses at one user, never another user's sign-in, and one user's
// success clears only that user's failures. A pair is forgotten once it
// has been quiet for twice max. It has no goroutine: the table is swept
// when it grows past its bound.
type loginLimiter struct {
	free       int
	base, max  time.Duration
	maxClients int

	mu       sync.Mutex
	failures map[loginKey]*loginFailures
}

// loginKey is what sign-in failures are counted against.
type loginKey struct{ user, ip string }

type loginFailures struct {
	n    int
	last time.Time
}

func newLoginLimiter(free int, base, max time.Duration, maxClients int) *loginLimiter {
	return &loginLimiter{free: free, base: base, max: max, maxClients: maxClients, failures: map[loginKey]*loginFailures{}}
}

// delay is the wait after n failures.
func (l *loginLimiter) delay(n int) time.Duration {
	if n < l.free {
		return 0
	}
	d := l.base
	for i := l.free; i < n && d < l.max; i++ {
		d *= 2
	}
	return min(d, l.max)
}

// liveLocked returns k's failures, forgetting them when they are stale. Caller holds mu.
func (l *loginLimiter) liveLocked(k loginKey, now time.Time) *loginFailures {
	f, ok := l.failures[k]
	if !ok {
		return nil
	}
	if now.Sub(f.last) >= 2*l.max {
		delete(l.failures, k)
		return nil
	}
	return f
}

// Blocked reports whether user may not try to sign in from ip yet, and for how long.
func (l *loginLimiter) Blocked(user, ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.liveLocked(loginKey{user, ip}, now)
	if f == nil {
		return false, 0
	}
	if wait := f.last.Add(l.delay(f.n)).Sub(now); wait > 0 {
		return true, wait
	}
	return false, 0
}

// Fail records a failed sign-in of user from ip.
func (l *loginLimiter) Fail(user, ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := loginKey{user, ip}
	f := l.liveLocked(k, now)
	if f == nil {
		if len(l.failures) >= l.maxClients {
			for other := range l.failures {
				l.liveLocked(other, now)
			}
			if len(l.failures) >= l.maxClients {
				// Still full of live entries: forget an arbitrary one rather than grow.
				for other := range l.failures {
					delete(l.failures, other)
					break
				}
			}
		}
		f = &loginFailures{}
		l.failures[k] = f
	}
	f.n++
	f.last = now
}

// Succeed forgets the failures of user from ip after a correct sign-in;
// other pairs keep theirs.
func (l *loginLimiter) Succeed(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, loginKey{user, ip})
}
