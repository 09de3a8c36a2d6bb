package raftfsm

import "sync"

// ViewCache keeps read views computed from the state (an API answer already
// encoded, a UI page's model), each valid for the state version it was made
// from: the state's identity and its applied Index. Every reader of the same
// version gets the same value, built once; the first reader after a change
// builds the next one. Values are shared between readers, so a cached value
// must never be changed after build returns it.
//
// Readers call Get while they hold the state (inside View), so the version
// they pass is the one they read; a cache is safe for concurrent use.
type ViewCache[T any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]viewEntry[T]
}

type viewEntry[T any] struct {
	state *State
	index uint64
	value T
}

// NewViewCache makes a cache of at most max keys (keys are views such as
// "services?workspace=shop"); past that the oldest versions' keys go first.
func NewViewCache[T any](max int) *ViewCache[T] {
	return &ViewCache[T]{max: max, entries: map[string]viewEntry[T]{}}
}

// Get returns key's value for st's version, calling build (outside the
// cache's lock, with st still held by the caller) when there is none yet.
func (c *ViewCache[T]) Get(st *State, key string, build func() T) T {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.state == st && e.index == st.Index {
		return e.value
	}
	v := build()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[key]; ok && cur.state == st && cur.index > st.Index {
		return v // a reader of a newer version stored its value first
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evictLocked()
	}
	c.entries[key] = viewEntry[T]{state: st, index: st.Index, value: v}
	return v
}

// evictLocked drops the entry of the oldest version (an arbitrary one among
// equals).
func (c *ViewCache[T]) evictLocked() {
	var oldest string
	first := true
	var idx uint64
	for k, e := range c.entries {
		if first || e.index < idx || (e.index == idx && k < oldest) {
			oldest, idx, first = k, e.index, false
		}
	}
	delete(c.entries, oldest)
}

// Len is the number of cached keys.
func (c *ViewCache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
