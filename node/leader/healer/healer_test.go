package healer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixed is a Source over a state the test builds; it records the commands
// instead of applying them (each test looks at one round's decisions).
type fixed struct {
	mu      sync.Mutex
	s       *raftfsm.State
	applied []raftfsm.Command
}

func (f *fixed) View(fn func(*raftfsm.State)) { f.mu.Lock(); defer f.mu.Unlock(); fn(f.s) }
func (f *fixed) Changed() <-chan struct{}     { return make(chan struct{}) }
func (f *fixed) Apply(_ context.Context, cmd raftfsm.Command) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, cmd)
	return nil, nil
}

func (f *fixed) commands() []raftfsm.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]raftfsm.Command(nil), f.applied...)
}

// threeNodes is a state of three active nodes, node-1 leading, and one
// stateless instance on node-2.
func threeNodes() *raftfsm.State {
	s := raftfsm.NewState()
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		s.Nodes[id] = &raftfsm.Node{ID: id, Status: raftfsm.NodeActive, API: "10.0.0." + string(rune('1'+i)) + ":9999", DropletID: 100 + i}
	}
	key := "abcdef/shop/prod/web"
	spec := raftfsm.ServiceSpec{Kind: raftfsm.KindService, Port: 8080, Replicas: 1}
	s.Services[key] = &raftfsm.Service{Key: key, Spec: spec, LiveGeneration: 1, Revisions: []raftfsm.Revision{{Generation: 1, Spec: spec}}}
	id := raftfsm.InstanceID(key, 0)
	s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Node: "node-2", Phase: raftfsm.PhaseReady, Generation: 1, DesiredGeneration: 1, Address: "10.0.0.2:30000"}
	return s
}

func testDeps(probe error) (Deps, *[]string) {
	var calls []string
	return Deps{
		Self: "node-1", Now: func() time.Time { return t0 },
		Interval:   func(*raftfsm.State) time.Duration { return time.Second },
		Ping:       func(context.Context, string) error { return nil },
		Probe:      func(context.Context, string, string, string) error { return probe },
		CloudReady: func() bool { return true },
		PowerCycle: func(_ context.Context, n raftfsm.Node, _ string) error {
			calls = append(calls, "power-cycle "+n.ID)
			return nil
		},
		Retire: func(_ context.Context, n raftfsm.Node) error { calls = append(calls, "retire "+n.ID); return nil },
		Place: func(*raftfsm.State, string, raftfsm.ServiceSpec) ([]raftfsm.Assignment, error) {
			return []raftfsm.Assignment{{Node: "node-3"}}, nil
		},
		NodeDead: func() { calls = append(calls, "node dead") },
	}, &calls
}

// Five failed pings power-cycle a node with a droplet; a node silent past
// the grace after its power-cycle is dead, and the cloud duty is woken.
func TestNodesRebootThenDead(t *testing.T) {
	s := threeNodes()
	s.Nodes["node-2"].ConsecutiveFailedPings = RebootAfterPings
	s.Nodes["node-3"].Status, s.Nodes["node-3"].RebootedAt = raftfsm.NodeRebooting, t0.Add(-DefaultDeadNodeGrace-time.Second)
	src := &fixed{s: s}
	deps, calls := testDeps(nil)
	deps.complete()
	h := &healer{src: src, d: deps}
	if err := h.nodes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 2 || (*calls)[0] != "power-cycle node-2" || (*calls)[1] != "node dead" {
		t.Fatalf("calls %v", *calls)
	}
	cmds := src.commands()
	if len(cmds) != 1 {
		t.Fatalf("commands %v", cmds)
	}
	if c, ok := cmds[0].(*raftfsm.SetNodeStatus); !ok || c.Node != "node-3" || c.Status != raftfsm.NodeDead {
		t.Fatalf("committed %#v", cmds[0])
	}
}

// The stateless instances of a dead node move where placement says.
func TestRescheduleMovesOffADeadNode(t *testing.T) {
	s := threeNodes()
	s.Nodes["node-2"].Status = raftfsm.NodeDead
	src := &fixed{s: s}
	deps, _ := testDeps(nil)
	deps.complete()
	h := &healer{src: src, d: deps}
	if err := h.reschedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmds := src.commands()
	if len(cmds) != 1 {
		t.Fatalf("commands %v", cmds)
	}
	if c, ok := cmds[0].(*raftfsm.MoveInstance); !ok || c.Node != "node-3" || c.Reason != "node node-2 is dead" {
		t.Fatalf("committed %#v", cmds[0])
	}
}

// An instance unhealthy three checks in a row is restarted when another
// node cannot reach it either; when another node can, the restart is
// vetoed, and the veto recorded once per streak.
func TestRestartsAfterASecondOpinion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe error
		want  func(raftfsm.Command) bool
	}{
		{"confirmed", errors.New("connection refused"), func(c raftfsm.Command) bool { _, ok := c.(*raftfsm.RestartInstance); return ok }},
		{"vetoed", nil, func(c raftfsm.Command) bool {
			e, ok := c.(*raftfsm.AppendEvent)
			return ok && e.Event.Kind == raftfsm.EventHealVeto
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := threeNodes()
			in := s.Instances[raftfsm.InstanceID("abcdef/shop/prod/web", 0)]
			in.ConsecutiveUnhealthy, in.HealthReason = RestartAfterUnhealthy, "connection refused"
			src := &fixed{s: s}
			deps, _ := testDeps(tc.probe)
			deps.complete()
			h := &healer{src: src, d: deps, vetoed: map[string]unhealthyStreak{}}
			for range 2 {
				if err := h.restarts(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			cmds := src.commands()
			want := 2
			if tc.probe == nil {
				want = 1 // one veto per streak
			}
			if len(cmds) != want || !tc.want(cmds[0]) {
				t.Fatalf("committed %#v", cmds)
			}
		})
	}
}

// A drained node that runs nothing is retired and removed, and the desired
// node count shrinks.
func TestFinishDrains(t *testing.T) {
	s := threeNodes()
	s.Nodes["node-3"].Status = raftfsm.NodeDraining
	s.Settings.DesiredNodes = 3
	src := &fixed{s: s}
	deps, calls := testDeps(nil)
	deps.complete()
	h := &healer{src: src, d: deps}
	if err := h.finishDrains(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 1 || (*calls)[0] != "retire node-3" {
		t.Fatalf("calls %v", *calls)
	}
	cmds := src.commands()
	if len(cmds) != 2 {
		t.Fatalf("commands %#v", cmds)
	}
	if c, ok := cmds[0].(*raftfsm.RemoveNode); !ok || c.Node != "node-3" {
		t.Fatalf("committed %#v", cmds[0])
	}
	if c, ok := cmds[1].(*raftfsm.UpdateSettings); !ok || *c.DesiredNodes != 2 {
		t.Fatalf("committed %#v", cmds[1])
	}
}
