package mesh

import "sync/atomic"

// eventQueue is the Events channel plus its overflow policy. Events are
// produced inside memberlist's callbacks, which hold memberlist's node lock,
// so pushing must never block: when the channel is full the oldest event is
// discarded and counted. Consumers that fall behind therefore see the most
// recent transitions and should re-read Members for the full picture.
//
// push is called with Mesh.mu held (single producer); receivers may run
// concurrently.
type eventQueue struct {
	ch      chan Event
	dropped atomic.Uint64
	closed  bool
}

func newEventQueue(size int) *eventQueue {
	return &eventQueue{ch: make(chan Event, size)}
}

// push enqueues ev, dropping the oldest queued event if the buffer is full.
func (q *eventQueue) push(ev Event) {
	if q.closed {
		return
	}
	select {
	case q.ch <- ev:
		return
	default:
	}
	// Full: make room by discarding the oldest. A concurrent receiver may
	// have made room already, in which case nothing is discarded.
	select {
	case <-q.ch:
		q.dropped.Add(1)
	default:
	}
	select {
	case q.ch <- ev:
	default:
		// Only reachable if the buffer has capacity 0; count it as dropped.
		q.dropped.Add(1)
	}
}

// close closes the channel; later pushes are ignored.
func (q *eventQueue) close() {
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
