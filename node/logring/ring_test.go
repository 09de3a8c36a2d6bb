package logring

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

func entryAt(t time.Time, msg string) Entry { return Entry{Time: t, Level: "INFO", Message: msg} }

func TestRingCapacityBound(t *testing.T) {
	r := NewRing(5)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		r.add(entryAt(base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
		if want := min(i+1, 5); r.Len() != want {
			t.Fatalf("after %d adds: len %d, want %d", i+1, r.Len(), want)
		}
	}
	got := r.Entries(time.Time{}, 0)
	if len(got) != 5 || r.Cap() != 5 || r.Total() != 12 {
		t.Fatalf("len %d cap %d total %d", len(got), r.Cap(), r.Total())
	}
	for i, e := range got {
		if e.Message != fmt.Sprint(7+i) {
			t.Fatalf("entry %d is %q, want %d (oldest first, newest kept)", i, e.Message, 7+i)
		}
	}
}

func TestRingEntriesSinceAndLimit(t *testing.T) {
	r := NewRing(100)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		r.add(entryAt(base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
	}
	msgs := func(es []Entry) string {
		s := ""
		for _, e := range es {
			s += e.Message
		}
		return s
	}
	for _, tc := range []struct {
		since time.Time
		limit int
		want  string
	}{
		{time.Time{}, 0, "0123456789"},
		{time.Time{}, 3, "789"},
		{time.Time{}, -1, "0123456789"},
		{base.Add(6 * time.Second), 0, "789"}, // strictly after
		{base.Add(6500 * time.Millisecond), 0, "789"},
		{base.Add(2 * time.Second), 2, "89"},
		{base.Add(6500 * time.Millisecond), 2, "89"},
		{base.Add(6500 * time.Millisecond), 3, "789"},
		{time.Time{}, 10, "0123456789"},
		{time.Time{}, 11, "0123456789"},
		{base.Add(time.Hour), 0, ""},
	} {
		if got := msgs(r.Entries(tc.since, tc.limit)); got != tc.want {
			t.Errorf("since %v limit %d: got %q, want %q", tc.since, tc.limit, got, tc.want)
		}
	}
}

func TestRingEntriesAreCopies(t *testing.T) {
	r := NewRing(4)
	r.add(Entry{Time: time.Now(), Message: "m", Attrs: map[string]any{"k": "v"}})
	got := r.Entries(time.Time{}, 0)
	got[0].Attrs["k"] = "changed"
	got[0].Message = "changed"
	if again := r.Entries(time.Time{}, 0); again[0].Attrs["k"] != "v" || again[0].Message != "m" {
		t.Fatalf("the ring changed: %+v", again[0])
	}
}

func TestNewRingBadCapacity(t *testing.T) {
	for _, c := range []int{0, -5} {
		if r := NewRing(c); r.Cap() != DefaultCapacity {
			t.Errorf("NewRing(%d).Cap() = %d", c, r.Cap())
		}
	}
}

func TestSubscribeLive(t *testing.T) {
	r := NewRing(10)
	r.add(entryAt(time.Now(), "before"))
	ctx, cancel := context.WithCancel(context.Background())
	ch := r.Subscribe(ctx)
	for i := range 3 {
		r.add(entryAt(time.Now(), fmt.Sprint("live", i)))
	}
	for i := range 3 {
		e, ok := recv(t, ch, 5*time.Second)
		if !ok || e.Message != fmt.Sprint("live", i) {
			t.Fatalf("got %+v %v, want live%d", e, ok, i)
		}
	}
	cancel()
	testkit.WaitFor(t, 5*time.Second, "the subscription to end", func() bool { return r.Subscribers() == 0 })
	if _, ok := recv(t, ch, 5*time.Second); ok {
		t.Fatal("channel still open after ctx ended")
	}
	r.add(entryAt(time.Now(), "after")) // no send on a closed channel
}

func TestSubscribeCancelledContext(t *testing.T) {
	r := NewRing(10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch := r.Subscribe(ctx)
	if _, ok := recv(t, ch, 5*time.Second); ok {
		t.Fatal("got an entry on a cancelled subscription")
	}
	if r.Subscribers() != 0 {
		t.Fatal("subscription kept")
	}
}

// TestSlowSubscriberDoesNotBlock: a subscriber that never reads must not
// stop adds; what it misses is counted.
func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	r := NewRing(10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := r.Subscribe(ctx)
	const n = 10 * SubscriberBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			r.add(entryAt(time.Now(), fmt.Sprint(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("adding blocked on a slow subscriber")
	}
	if got := r.Dropped(); got != n-SubscriberBuffer {
		t.Fatalf("dropped %d, want %d", got, n-SubscriberBuffer)
	}
	if len(slow) != SubscriberBuffer {
		t.Fatalf("slow subscriber holds %d", len(slow))
	}
	// It kept the first entries, in order.
	if e := <-slow; e.Message != "0" {
		t.Fatalf("first kept entry %q", e.Message)
	}
}

func TestRingConcurrent(t *testing.T) {
	r := NewRing(64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var readers sync.WaitGroup
	for range 2 {
		ch := r.Subscribe(ctx)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range ch {
			}
		}()
	}
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 300 {
				r.add(Entry{Time: time.Now(), Message: fmt.Sprint(g, i), Attrs: map[string]any{"g": g}})
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				for _, e := range r.Entries(time.Time{}, 10) {
					e.Attrs["read"] = true // copies: no race with the ring
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	readers.Wait()
	if r.Len() != 64 || r.Total() != 1200 {
		t.Fatalf("len %d total %d", r.Len(), r.Total())
	}
}
