package api

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestIPLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(rate.Every(time.Second), 2, 100)
	for i := range 2 {
		if ok, _ := l.allow("10.0.0.1", now); !ok {
			t.Fatalf("request %d refused", i+1)
		}
	}
	ok, wait := l.allow("10.0.0.1", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third request: ok %v wait %s", ok, wait)
	}
	if ok, _ := l.allow("10.0.0.2", now); !ok {
		t.Fatal("another address was limited")
	}
	if ok, _ := l.allow("10.0.0.1", now.Add(time.Second)); !ok {
		t.Fatal("no token after the refill")
	}

	// blocked looks without taking; take takes.
	f := newIPLimiter(rate.Every(time.Minute), 1, 100)
	if b, _ := f.blocked("a", now); b {
		t.Fatal("unknown address blocked")
	}
	f.take("a", now)
	b, wait := f.blocked("a", now)
	if !b || wait < 59*time.Second || retryAfterSeconds(wait) != 60 {
		t.Fatalf("blocked %v wait %s", b, wait)
	}
	if b, _ := f.blocked("a", now.Add(time.Minute)); b {
		t.Fatal("still blocked after the refill")
	}
	if retryAfterSeconds(0) != 1 || retryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Fatal("retryAfterSeconds")
	}
}

func TestIPLimiterTableIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newIPLimiter(rate.Every(time.Hour), 1, 50)
	for i := range 500 {
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now.Add(time.Duration(i)*time.Millisecond))
		if l.size() > 50 {
			t.Fatalf("%d entries after %d clients", l.size(), i+1)
		}
	}
	// The newest client is still tracked (and limited).
	if ok, _ := l.allow("10.0.1.243", now.Add(time.Second)); ok {
		t.Fatal("the most recent client lost its bucket")
	}
}
