package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A kick reaches every duty, each on its own channel (one shared channel
// woke one arbitrary reader).
func TestKickReachesEachDuty(t *testing.T) {
	w := NewWakeups()
	names := []string{"rollout", "restarts", "cloud", "housekeeping", "gossip-rotation"}
	for _, n := range names {
		w.Chan(n)
	}
	w.Kick()
	w.Kick() // a second kick while one is pending does not block
	for _, n := range names {
		select {
		case <-w.Chan(n):
		default:
			t.Fatalf("the kick did not reach %s", n)
		}
		select {
		case <-w.Chan(n):
			t.Fatalf("%s woke twice for kicks it had not yet seen one of", n)
		default:
		}
	}
}

// Every duty loop woken by the kicks runs a round after a kick, each one.
func TestKickWakesEachEveryLoop(t *testing.T) {
	w := NewWakeups()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := []string{"a", "b", "c", "d", "e"}
	rounds := make([]chan struct{}, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		rounds[i] = make(chan struct{}, 10)
		wg.Add(1)
		go func(i int, n string) {
			defer wg.Done()
			Every{Name: n, Interval: time.Hour, Wake: w.Chan(n)}.Run(ctx, func(context.Context) error {
				rounds[i] <- struct{}{}
				return nil
			})
		}(i, n)
	}
	for i := range names {
		<-rounds[i] // the first round runs at once
	}
	w.Kick()
	for i, n := range names {
		select {
		case <-rounds[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("duty %s did not run after the kick", n)
		}
	}
	cancel()
	wg.Wait()
}

// fakeRaft is leadership a test flips.
type fakeRaft struct {
	mu      sync.Mutex
	leading bool
	changed chan struct{}
}

func newFakeRaft() *fakeRaft { return &fakeRaft{changed: make(chan struct{})} }

func (r *fakeRaft) set(leading bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leading = leading
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *fakeRaft) LeadershipChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *fakeRaft) IsLeader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

func (r *fakeRaft) Barrier(context.Context) error { return nil }
func (r *fakeRaft) Term() uint64                  { return 1 }

// The loop establishes leadership (Establish, then every duty) when raft
// says this node leads, and stops the duties when it no longer does.
func TestLoopStartsAndStopsDuties(t *testing.T) {
	r := newFakeRaft()
	var established atomic.Int32
	started, stopped := make(chan string, 4), make(chan string, 4)
	duty := func(name string) Duty {
		return Duty{Name: name, Run: func(ctx context.Context) {
			started <- name
			<-ctx.Done()
			stopped <- name
		}}
	}
	l := Loop{Raft: r, Duties: func() []Duty { return []Duty{duty("x"), duty("y")} },
		Establish: func(context.Context) error { established.Add(1); return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()

	r.set(true)
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("duties did not start on leadership")
		}
	}
	if established.Load() != 1 {
		t.Fatalf("established %d times", established.Load())
	}
	r.set(false)
	for range 2 {
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("duties did not stop when leadership was lost")
		}
	}
	cancel()
	<-done
}
