package raftfsm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestViewCacheBuildsOncePerVersion(t *testing.T) {
	f := newFixture(t)
	c := NewViewCache[string](2)
	var builds atomic.Int64
	get := func(key string) string {
		var v string
		f.fsm.View(func(s *State) {
			v = c.Get(s, key, func() string {
				builds.Add(1)
				return fmt.Sprintf("%s@%d", key, s.Index)
			})
		})
		return v
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_ = get("a")
			}
		}()
	}
	wg.Wait()
	if n := builds.Load(); n < 1 || n > 8 {
		t.Fatalf("%d builds for one version read 800 times", n)
	}
	idx := f.fsm.Index()
	if v := get("a"); v != fmt.Sprintf("a@%d", idx) {
		t.Fatalf("got %q", v)
	}
	f.must(&AppendEvent{At: t0, Event: Event{Kind: "k", Message: "m"}})
	if v := get("a"); v != fmt.Sprintf("a@%d", idx+1) {
		t.Fatalf("after a change got %q, want the new version", v)
	}
	// A restored state is another version even at the same index.
	g := NewFSM(nil)
	var before string
	f.fsm.View(func(s *State) { before = c.Get(s, "b", func() string { return "f" }) })
	g.View(func(s *State) {
		s.Index = f.fsm.Index()
		if v := c.Get(s, "b", func() string { return "g" }); v != "g" || before != "f" {
			t.Fatalf("another state at the same index got %q", v)
		}
	})
	// At most 2 keys: the oldest version's goes.
	_ = get("c")
	if c.Len() != 2 {
		t.Fatalf("%d keys cached, max 2", c.Len())
	}
}
