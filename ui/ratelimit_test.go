package ui

import (
	"fmt"
	"testing"
	"time"
)

func TestLoginLimiterBacksOffPerUserAndAddress(t *testing.T) {
	l := newLoginLimiter(3, time.Second, time.Minute, 100)
	t0 := time.Now()
	for i := range 3 {
		if blocked, _ := l.Blocked("ann", "a", t0); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("ann", "a", t0)
	}
	// Past the free failures each one doubles the wait: 1s, 2s, 4s, ...
	now := t0
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		blocked, wait := l.Blocked("ann", "a", now)
		if !blocked || wait != want {
			t.Fatalf("after %d failures: blocked %v, wait %s, want %s", 3+i, blocked, wait, want)
		}
		now = now.Add(wait)
		if blocked, _ := l.Blocked("ann", "a", now); blocked {
			t.Fatalf("still blocked once the wait of %s passed", want)
		}
		l.Fail("ann", "a", now)
	}
	// The wait is capped.
	for range 20 {
		l.Fail("ann", "a", now)
	}
	if _, wait := l.Blocked("ann", "a", now); wait != time.Minute {
		t.Fatalf("capped wait %s, want 1m", wait)
	}
	// Another user from the same address, and the same user from another
	// address, are not slowed.
	if blocked, _ := l.Blocked("bob", "a", now); blocked {
		t.Error("another user from the guesser's address is blocked")
	}
	if blocked, _ := l.Blocked("ann", "b", now); blocked {
		t.Error("the user from another address is blocked")
	}
	// Another user's success does not clear ann's failures.
	l.Fail("bob", "a", now)
	l.Succeed("bob", "a")
	if blocked, _ := l.Blocked("ann", "a", now); !blocked {
		t.Error("bob's success cleared ann's failures")
	}
	// A pair quiet for twice the cap starts afresh.
	if blocked, _ := l.Blocked("ann", "a", now.Add(2*time.Minute)); blocked {
		t.Error("still blocked after a long quiet")
	}
	l.Succeed("ann", "a")
	if blocked, _ := l.Blocked("ann", "a", now); blocked {
		t.Error("blocked after a success")
	}
}

func TestLoginLimiterBounded(t *testing.T) {
	l := newLoginLimiter(5, time.Second, time.Minute, 10)
	now := time.Now()
	for i := range 1000 {
		l.Fail("ann", fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		l.Fail(fmt.Sprintf("user%d", i), "10.9.9.9", now)
	}
	l.mu.Lock()
	n := len(l.failures)
	l.mu.Unlock()
	if n > 10 {
		t.Fatalf("table holds %d pairs, bound is 10", n)
	}
}
