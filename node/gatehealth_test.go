package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// doneStateWatcher looks at every state a replica goes through and keeps
// what the instances' health was in the first state in which a deploy was
// done: what `dropmesh services` and `dropmesh health` say the moment
// `deploy` reports it live.
type doneStateWatcher struct {
	mu     sync.Mutex
	seen   map[string][]raftfsm.Instance // deploy id -> its service's instances then
	cancel context.CancelFunc
	done   chan struct{}
}

func watchDoneStates(t *testing.T, n *testNode) *doneStateWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &doneStateWatcher{seen: map[string][]raftfsm.Instance{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			changed := n.agent.Changed() // before the read: no change is missed
			n.agent.View(func(s *raftfsm.State) {
				w.mu.Lock()
				defer w.mu.Unlock()
				for id, d := range s.Deploys {
					if _, ok := w.seen[id]; ok || d.Status == raftfsm.DeployRolling {
						continue
					}
					var ins []raftfsm.Instance
					for _, in := range s.ServiceInstances(d.Service) {
						ins = append(ins, *in)
					}
					w.seen[id] = ins
				}
			})
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *doneStateWatcher) stop() {
	w.cancel()
	<-w.done
}

func (w *doneStateWatcher) at(id string) []raftfsm.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[id]
}

// TestHealthAfterADeployStartsFromTheStartGate: the start gate has just
// seen the new container pass its checks, so from the state in which the
// deploy is done on, the instance is healthy, checked when the gate's last
// check passed: not "starting" (a first deploy) nor the old container's
// last periodic check (an update) until the next periodic check, which
// here is an hour away.
func TestHealthAfterADeployStartsFromTheStartGate(t *testing.T) {
	c, rt := runtimeClusterWith(t, func(cfg *Config) { cfg.HealthInterval = time.Hour })
	n := c.nodes[0]
	v1 := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	v2 := runtimetest.BuildTestImage(t, rt, "v2", map[string]string{"VERSION": "v2"})
	t.Cleanup(func() { removeClusterContainers(t, rt, c) }) // before the images go
	w := watchDoneStates(t, n)

	for _, img := range []string{v1, v2} {
		d := c.deploy(webSpec(img))
		if d.Status != raftfsm.DeploySucceeded {
			t.Fatalf("deploy of %s: %s %s", img, d.Status, d.Reason)
		}
		var ins []raftfsm.Instance
		c.waitState(n, 10*time.Second, "the watcher to see deploy "+d.ID+" done", func(*raftfsm.State) bool {
			ins = w.at(d.ID)
			return ins != nil
		})
		if len(ins) != 1 {
			t.Fatalf("deploy %s done with %d instances", d.ID, len(ins))
		}
		in := ins[0]
		if in.Health != raftfsm.HealthHealthy || !in.CheckedAt.After(d.StartedAt) {
			t.Fatalf("when deploy %s of %s was done its instance was %q (%q) checked at %s; want healthy from the start gate, checked after the deploy began at %s",
				d.ID, img, in.Health, in.HealthReason, in.CheckedAt, d.StartedAt)
		}
		if last, ok := in.History.Last(); !ok || last.Status != raftfsm.HealthHealthy {
			t.Fatalf("health history when the deploy was done: %+v", in.History.Segments())
		}
		// The answers of `dropmesh health` and `dropmesh services` agree.
		n.agent.View(func(s *raftfsm.State) {
			h, ok := control.ServiceHealthOf(s, d.Service, d.Service)
			if !ok || len(h.Instances) != 1 || h.Instances[0].Status != raftfsm.HealthHealthy {
				t.Errorf("dropmesh health after deploy %s: %+v", d.ID, h)
			}
		})
	}
}
