package node

import (
	"fmt"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// rolloutStep is what the leader's roll-out controller does next for one deploy.
type rolloutStep struct {
	// Advance moves these instances to the deploy's generation.
	Advance []string
	// Finish ends the deploy with this status and reason ("" = not yet).
	Finish, Reason string
}

// instanceReady reports whether an instance runs generation gen, healthy and routed.
func instanceReady(in *raftfsm.Instance, gen int64) bool {
	return in.DesiredGeneration == gen && in.Generation == gen && in.FailedGeneration < gen &&
		(in.Phase == raftfsm.PhaseReady || in.Phase == raftfsm.PhaseScheduled)
}

// deployDeadline bounds a roll-out: every batch gets its start timeout twice
// over, plus time to pull, with a floor of ten minutes.
func deployDeadline(d *raftfsm.Deploy, spec raftfsm.ServiceSpec, instances int) time.Time {
	batches := (instances + max(d.MaxParallel, 1) - 1) / max(d.MaxParallel, 1)
	budget := time.Duration(batches) * (2*spec.Health.StartTimeout.D() + 2*time.Minute)
	return d.StartedAt.Add(max(budget, 10*time.Minute))
}

// planRollout decides the next step of a rolling deploy. Pure: the leader
// turns the step into commands.
//
// Instances move to the new generation in batches of MaxParallel (one at a
// time by default), in slot order; an instance on a node that is not active
// does not hold the roll-out up (healing moves it, to the live generation).
// The first instance that fails stops the roll-out: the deploy fails with its
// reason, and FinishDeploy sends the instances back to the live generation.
func planRollout(s *raftfsm.State, d *raftfsm.Deploy, now time.Time) rolloutStep {
	svc, ok := s.Services[d.Service]
	if !ok {
		return rolloutStep{Finish: raftfsm.DeployFailed, Reason: "the service was removed"}
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
			return rolloutStep{Finish: raftfsm.DeployFailed, Reason: fmt.Sprintf("%s on %s: %s", in.ID, in.Node, reason)}
		case instanceReady(in, gen):
			ready++
		case in.DesiredGeneration == gen:
			inflight++
		default:
			pending = append(pending, in.ID)
		}
	}
	if eligible > 0 && ready == eligible {
		return rolloutStep{Finish: raftfsm.DeploySucceeded}
	}
	if now.After(deployDeadline(d, svc.Spec, eligible)) {
		return rolloutStep{Finish: raftfsm.DeployFailed, Reason: fmt.Sprintf("timed out after %s with %d of %d instances ready",
			now.Sub(d.StartedAt).Round(time.Second), ready, eligible)}
	}
	if room := max(d.MaxParallel, 1) - inflight; room > 0 && len(pending) > 0 {
		return rolloutStep{Advance: pending[:min(room, len(pending))]}
	}
	return rolloutStep{}
}

// rollingDeploys returns the deploys in progress, oldest first.
func rollingDeploys(s *raftfsm.State) []*raftfsm.Deploy {
	var out []*raftfsm.Deploy
	for _, id := range raftfsm.SortedKeys(s.Deploys) {
		if d := s.Deploys[id]; d.Status == raftfsm.DeployRolling {
			out = append(out, d)
		}
	}
	return out
}

// phaseLine renders an instance's phase for progress lines ("health 1/3").
func phaseLine(phase string, done, want int) string {
	if phase == raftfsm.PhaseChecking {
		return fmt.Sprintf("%s %d/%d", phase, done, want)
	}
	return phase
}

// isCheckingPhase reports whether a reported phase is a health count.
func isCheckingPhase(p string) bool { return strings.HasPrefix(p, raftfsm.PhaseChecking+" ") }
