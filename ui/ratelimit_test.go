package ui

import (
	"fmt"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter(3, time.Minute, 100)
	t0 := time.Now()
	for i := 0; i < 3; i++ {
		if blocked, _ := l.Blocked("a", t0); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("a", t0.Add(time.Duration(i)*time.Second))
	}
	blocked, wait := l.Blocked("a", t0.Add(3*time.Second))
	if !blocked || wait != 57*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %s (want 57s)", blocked, wait)
	}
	if blocked, _ := l.Blocked("b", t0); blocked {
		t.Errorf("another address is blocked")
	}
	// The oldest failure leaves the window: one more try.
	if blocked, _ := l.Blocked("a", t0.Add(60*time.Second)); blocked {
		t.Errorf("still blocked once the first failure is a minute old")
	}
	l.Succeed("a")
	if blocked, _ := l.Blocked("a", t0.Add(4*time.Second)); blocked {
		t.Errorf("blocked after a success")
	}
}

func TestLoginLimiterBounded(t *testing.T) {
	l := newLoginLimiter(5, time.Minute, 10)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		l.Fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	l.mu.Lock()
	n := len(l.failures)
	l.mu.Unlock()
	if n > 10 {
		t.Fatalf("table holds %d addresses, bound is 10", n)
	}
	// Many failures of one address keep at most max entries.
	for i := 0; i < 100; i++ {
		l.Fail("x", now)
	}
	l.mu.Lock()
	n = len(l.failures["x"])
	l.mu.Unlock()
	if n != 5 {
		t.Fatalf("one address keeps %d failures, want 5", n)
	}
}
