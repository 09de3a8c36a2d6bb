package fakeapi

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestQueueRunsInOrderAndWaits(t *testing.T) {
	q := newQueue()
	c, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { q.run(c) })
	var mu sync.Mutex
	var got []int
	for i := range 50 {
		q.push(func(context.Context) { mu.Lock(); got = append(got, i); mu.Unlock() })
	}
	q.wait()
	mu.Lock()
	if len(got) != 50 || !slices.IsSorted(got) {
		t.Fatalf("ran %v", got)
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	q.push(func(context.Context) { t.Error("a job ran after the queue stopped") })
	q.wait() // must not block once stopped with a job queued
}
