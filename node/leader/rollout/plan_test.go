package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

var now0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func rolloutState(replicas, maxParallel int) (*raftfsm.State, *raftfsm.Deploy) {
	s := raftfsm.NewState()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		s.Nodes[id] = &raftfsm.Node{ID: id, Region: "nyc3", Status: raftfsm.NodeActive}
	}
	key := "abcdef/shop/prod/web"
	spec := raftfsm.ServiceSpec{Replicas: replicas, Health: raftfsm.HealthSpec{StartTimeout: raftfsm.Duration(time.Minute)}}
	s.Services[key] = &raftfsm.Service{Key: key, Spec: spec, Generation: 2, LiveGeneration: 1}
	for i := 0; i < replicas; i++ {
		id := raftfsm.InstanceID(key, i)
		s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Slot: i, Node: []string{"node-1", "node-2", "node-3"}[i%3],
			DesiredGeneration: 1, Generation: 1, Phase: raftfsm.PhaseReady}
	}
	d := &raftfsm.Deploy{ID: "d2", Service: key, Generation: 2, PrevGeneration: 1, MaxParallel: maxParallel, Status: raftfsm.DeployRolling, StartedAt: now0}
	s.Deploys[d.ID] = d
	return s, d
}

func TestPlanRolloutOneAtATime(t *testing.T) {
	s, d := rolloutState(3, 1)
	step := Plan(s, d, now0)
	if len(step.Advance) != 1 || step.Advance[0] != "abcdef/shop/prod/web#0" {
		t.Fatalf("first step %+v", step)
	}
	in0 := s.Instances["abcdef/shop/prod/web#0"]
	in0.DesiredGeneration = 2
	if step := Plan(s, d, now0); len(step.Advance) != 0 || step.Finish != "" {
		t.Fatalf("advanced while one is in flight: %+v", step)
	}
	in0.Generation, in0.Phase = 2, raftfsm.PhaseReady
	if step := Plan(s, d, now0); len(step.Advance) != 1 || step.Advance[0] != "abcdef/shop/prod/web#1" {
		t.Fatalf("second step %+v", step)
	}
	for _, in := range s.Instances {
		in.DesiredGeneration, in.Generation, in.Phase = 2, 2, raftfsm.PhaseReady
	}
	if step := Plan(s, d, now0); step.Finish != raftfsm.DeploySucceeded {
		t.Fatalf("final step %+v", step)
	}
}

func TestPlanRolloutParallelAndFailure(t *testing.T) {
	s, d := rolloutState(3, 3)
	if step := Plan(s, d, now0); len(step.Advance) != 3 {
		t.Fatalf("parallel step %+v", step)
	}
	in := s.Instances["abcdef/shop/prod/web#1"]
	in.DesiredGeneration, in.FailedGeneration, in.Error = 2, 2, "health check failed: 500"
	step := Plan(s, d, now0)
	if step.Finish != raftfsm.DeployFailed || !strings.Contains(step.Reason, "health check failed: 500") || !strings.Contains(step.Reason, "node-2") {
		t.Fatalf("failure step %+v", step)
	}
}

func TestPlanRolloutSkipsInactiveNodesAndTimesOut(t *testing.T) {
	s, d := rolloutState(2, 1)
	s.Nodes["node-1"].Status = raftfsm.NodeRebooting
	step := Plan(s, d, now0)
	if len(step.Advance) != 1 || step.Advance[0] != "abcdef/shop/prod/web#1" {
		t.Fatalf("step %+v: the instance on the rebooting node should be skipped", step)
	}
	if step := Plan(s, d, now0.Add(time.Hour)); step.Finish != raftfsm.DeployFailed || !strings.Contains(step.Reason, "timed out") {
		t.Fatalf("timeout step %+v", step)
	}
	delete(s.Services, d.Service)
	if step := Plan(s, d, now0); step.Finish != raftfsm.DeployFailed {
		t.Fatalf("removed service %+v", step)
	}
}
