package rollout

import (
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Step is what the roll-out duty does next for one deploy.
type Step struct {
	// Advance moves these instances to the deploy's generation.
	Advance []string
	// Finish ends the deploy with this status and reason ("" = not yet).
	Finish, Reason string
}

// InstanceReady reports whether an instance runs generation gen, healthy and routed.
func InstanceReady(in *raftfsm.Instance, gen int64) bool {
	return in.DesiredGeneration == gen && in.Generation == gen && in.FailedGeneration < gen &&
		(in.Phase == raftfsm.PhaseReady || in.Phase == raftfsm.PhaseScheduled)
}

// Deadline bounds a roll-out: every batch gets its start timeout twice
// over, plus time to pull, with a floor of ten minutes.
func Deadline(d *raftfsm.Deploy, spec raftfsm.ServiceSpec, instances int) time.Time {
	batches := (instances + max(d.MaxParallel, 1) - 1) / max(d.MaxParallel, 1)
	budget := time.Duration(batches) * (2*spec.Health.StartTimeout.D() + 2*time.Minute)
	return d.StartedAt.Add(max(budget, 10*time.Minute))
}

// Plan decides the next step of a rolling deploy. Pure: Run turns the
// step into commands.
//
// Instances move to the new generation in batches of MaxParallel (one at a
// time by default), in slot order; an instance on a node that is not active
// does not hold the roll-out up (healing moves it, to the live generation).
// The first instance that fails stops the roll-out: the deploy fails with its
// reason, and FinishDeploy sends the instances back to the live generation.
func Plan(s *raftfsm.State, d *raftfsm.Deploy, now time.Time) Step {
	svc, ok := s.Services[d.Service]
	if !ok {
		return Step{Finish: raftfsm.DeployFailed, Reason: "the service was removed"}
	}
	gen := d.Generation
	var pending []string
	inflight, eligible, ready := 0, 0, 0
	for _, in := range s.ServiceInstances(d.Service) {
		if n, ok := s.Nodes[in.Node]; !ok || n.Status != raftfsm.NodeActive {
			continue
		}
		eligible++
		switch {
		case in.DesiredGeneration == gen && in.FailedGeneration >= gen:
			reason := in.Error
			if reason == "" {
				reason = "the new generation did not become healthy"
			}
			return Step{Finish: raftfsm.DeployFailed, Reason: fmt.Sprintf("%s on %s: %s", in.ID, in.Node, reason)}
		case InstanceReady(in, gen):
			ready++
		case in.DesiredGeneration == gen:
			inflight++
		default:
			pending = append(pending, in.ID)
		}
	}
	if eligible > 0 && ready == eligible {
		return Step{Finish: raftfsm.DeploySucceeded}
	}
	if now.After(Deadline(d, svc.Spec, eligible)) {
		return Step{Finish: raftfsm.DeployFailed, Reason: fmt.Sprintf("timed out after %s with %d of %d instances ready",
			now.Sub(d.StartedAt).Round(time.Second), ready, eligible)}
	}
	if room := max(d.MaxParallel, 1) - inflight; room > 0 && len(pending) > 0 {
		return Step{Advance: pending[:min(room, len(pending))]}
	}
	return Step{}
}

// Rolling returns the deploys in progress, oldest first.
func Rolling(s *raftfsm.State) []*raftfsm.Deploy {
	var out []*raftfsm.Deploy
	for _, id := range raftfsm.SortedKeys(s.Deploys) {
		if d := s.Deploys[id]; d.Status == raftfsm.DeployRolling {
			out = append(out, d)
		}
	}
	return out
}
