package leader

import "sync"

// Wakeups are the leader duties' wake-up channels, one per duty name. A
// kick (a deploy, a settings change, a node marked dead) wakes every duty
// once: each has its own channel with room for one pending wake-up, so no
// duty takes another's and a duty that is busy still sees the kick when it
// next waits.
type Wakeups struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

// NewWakeups makes the set of wake-up channels (empty until duties ask).
func NewWakeups() *Wakeups { return &Wakeups{chans: map[string]chan struct{}{}} }

// Chan is the wake-up channel of the duty called name; the same name always
// gets the same channel, so a duty restarted on a new leadership keeps it.
func (w *Wakeups) Chan(name string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.chans[name]
	if !ok {
		c = make(chan struct{}, 1)
		w.chans[name] = c
	}
	return c
}

// Kick wakes every duty that has a channel; it never blocks.
func (w *Wakeups) Kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.chans {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
