package logring

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultCapacity is the ring size NewRing uses when given a capacity below 1.
const DefaultCapacity = 1000

// SubscriberBuffer is how many entries a subscriber may fall behind before it
// misses some. Larger smooths bursts for a slow reader at the cost of memory
// per subscriber.
const SubscriberBuffer = 256

// Entry is one recorded log record.
type Entry struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"msg"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// Ring is a bounded in-memory buffer of recent records, safe for concurrent
// use. When full, the oldest record makes room for the newest.
type Ring struct {
	mu      sync.Mutex
	buf     []Entry // circular; buf[next] is the oldest once full
	next    int
	full    bool
	total   uint64
	dropped uint64
	subs    map[chan Entry]struct{}
}

// NewRing returns a ring keeping the last capacity records (DefaultCapacity
// if capacity < 1).
func NewRing(capacity int) *Ring {
	if capacity < 1 {
		capacity = DefaultCapacity
	}
	return &Ring{buf: make([]Entry, capacity), subs: map[chan Entry]struct{}{}}
}

// add records e and hands it to every subscriber that has room; it never
// blocks. e.Attrs must not be changed afterwards.
func (r *Ring) add(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.total++
	for ch := range r.subs {
		select {
		case ch <- e:
		default:
			r.dropped++
		}
	}
}

// Entries returns the records made after since (all if since is zero),
// oldest first; with limit > 0, only the newest limit of them. The entries
// are copies: changing them changes nothing in the ring.
func (r *Ring) Entries(since time.Time, limit int) []Entry {
	r.mu.Lock()
	n := r.lenLocked()
	out := make([]Entry, 0, n)
	if limit > 0 {
		out = make([]Entry, 0, min(n, limit))
	}
	// Walk from the newest back, so a limit bounds the work; the times of
	// concurrent records are not strictly ordered, so since filters each.
	for i := 1; i <= n; i++ {
		if limit > 0 && len(out) == limit {
			break
		}
		e := r.buf[(r.next-i+len(r.buf))%len(r.buf)]
		if !since.IsZero() && !e.Time.After(since) {
			continue
		}
		out = append(out, e)
	}
	r.mu.Unlock()
	slices.Reverse(out)
	// Attrs maps are never changed once recorded, so they can be copied
	// without the lock.
	for i := range out {
		out[i].Attrs = maps.Clone(out[i].Attrs)
	}
	return out
}

// Subscribe returns a channel of the records made from now on, until ctx
// ends; then the channel is closed. A subscriber that does not keep up
// misses records (see Dropped); it never slows logging down.
func (r *Ring) Subscribe(ctx context.Context) <-chan Entry {
	ch := make(chan Entry, SubscriberBuffer)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, ch)
		close(ch)
	})
	return ch
}

// Len returns how many records the ring holds.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lenLocked()
}

func (r *Ring) lenLocked() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// Cap returns how many records the ring can hold.
func (r *Ring) Cap() int { return len(r.buf) }

// Total returns how many records were ever added.
func (r *Ring) Total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Dropped returns how many records subscribers missed because they were
// behind, summed over all subscribers.
func (r *Ring) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Subscribers returns how many subscriptions are open.
func (r *Ring) Subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}
