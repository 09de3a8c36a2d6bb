package fakeapi

import (
	"context"
	"sync"
)

// queue runs jobs one at a time, in the order they were pushed, on one
// goroutine owned by the Server (started in New, stopped by Close). Backend
// calls and action completions go through it, so a droplet's Start can never
// overtake its Stop.
type queue struct {
	mu      sync.Mutex
	jobs    []func(context.Context)
	wake    chan struct{}
	busy    bool
	stopped bool
	idle    *sync.Cond
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1)}
	q.idle = sync.NewCond(&q.mu)
	return q
}

// push adds a job; it never blocks. Jobs pushed after the queue stopped are
// dropped.
func (q *queue) push(job func(context.Context)) {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run executes jobs until ctx ends; queued jobs left then are dropped.
func (q *queue) run(ctx context.Context) {
	defer func() {
		q.mu.Lock()
		q.stopped, q.busy, q.jobs = true, false, nil
		q.idle.Broadcast()
		q.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			if len(q.jobs) == 0 || ctx.Err() != nil {
				q.busy = false
				q.idle.Broadcast()
				q.mu.Unlock()
				break
			}
			job := q.jobs[0]
			q.jobs = q.jobs[1:]
			q.busy = true
			q.mu.Unlock()
			job(ctx)
		}
	}
}

// wait blocks until no job is queued or running, or the queue stopped.
func (q *queue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for (len(q.jobs) > 0 || q.busy) && !q.stopped {
		q.idle.Wait()
	}
}
