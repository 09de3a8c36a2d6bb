package raftfsm

import (
	"fmt"
	"time"
)

func applyReportHealth(s *State, c *ReportHealth) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.Nodes[c.Node]; !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	for _, r := range c.Results {
		if !ValidHealth(r.Status) {
			return nil, invalidf("health of %s: status %q", r.Instance, r.Status)
		}
		if r.CheckedAt.IsZero() {
			return nil, invalidf("health of %s: no check time", r.Instance)
		}
	}
	for _, r := range c.Results {
		in, ok := s.Instances[r.Instance]
		if !ok || in.Node != c.Node {
			continue // stale
		}
		if r.CheckedAt.Before(in.CheckedAt) {
			continue // older than what we have
		}
		s.recordHealth(in, r, c.At)
	}
	return nil, nil
}

// recordHealth folds one result into an instance: status, the unhealthy
// streak the leader acts on, the restart streak, and the run-length history.
func (s *State) recordHealth(in *Instance, r HealthReport, at time.Time) {
	reason := r.Reason
	if len(reason) > healthReasonMaxSize {
		reason = reason[:healthReasonMaxSize]
	}
	prev := in.Health
	in.Health, in.HealthReason, in.CheckedAt = r.Status, reason, r.CheckedAt
	switch r.Status {
	case HealthUnhealthy:
		in.ConsecutiveUnhealthy++
	default:
		in.ConsecutiveUnhealthy = 0
	}
	if r.Status == HealthHealthy && in.RestartStreak > 0 && at.Sub(in.LastRestartAt) >= restartStreakReset {
		in.RestartStreak = 0
		in.CrashLooping = false
	}
	in.History = in.History.Append(r.Status, r.CheckedAt)
	if prev != r.Status && r.Status != HealthStarting && (prev != "" || r.Status != HealthHealthy) {
		sev := SeverityInfo
		switch r.Status {
		case HealthUnhealthy:
			sev = SeverityError
		case HealthDegraded:
			sev = SeverityWarn
		}
		msg := fmt.Sprintf("%s on %s is %s", in.ID, in.Node, r.Status)
		if reason != "" {
			msg += ": " + reason
		}
		s.event(at, EventHealth, sev, msg, func(e *Event) { e.Service, e.Instance, e.Node = in.Service, in.ID, in.Node })
	}
}

func applyPurgeHistory(s *State, c *PurgeHistory) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if c.Before.IsZero() || c.Before.After(c.At) {
		return nil, invalidf("purge before %s: must be set and not after the command time", c.Before)
	}
	purged := 0
	for _, id := range SortedKeys(s.Instances) {
		in := s.Instances[id]
		var n int
		in.History, n = in.History.Purge(c.Before)
		purged += n
	}
	return purged, nil
}
