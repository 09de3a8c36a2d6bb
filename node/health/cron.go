package health

import (
	"fmt"
	"time"
)

// CronState is what the cron runner knows of a scheduled job.
type CronState struct {
	// Schedule is the job's schedule (see NextFire).
	Schedule string
	// CreatedAt is when the job came to exist on this node; fire times
	// before it were not missed.
	CreatedAt time.Time
	// LastRunAt is when the last finished run started (zero: none yet).
	LastRunAt time.Time
	// LastExitCode is the last finished run's exit code (-1: did not start).
	LastExitCode int
	// LastDuration is how long the last finished run took.
	LastDuration time.Duration
	// RunningSince is when the run in progress started (zero: none).
	RunningSince time.Time
}

// checkCron judges a cron job at now, in this order: a run in progress for
// longer than CronMaxRun, a failed last run, a missed run, else healthy.
//
// A run is missed when the schedule fired after the job existed and after
// the last run ended (the runner computes the next fire time when a run
// ends, so fire times during a run are skipped, not missed), more than
// CronGrace ago, and no run is in progress.
func checkCron(cfg Config, st CronState, now time.Time) (Status, string) {
	if _, err := parseSchedule(st.Schedule); err != nil {
		return StatusUnhealthy, err.Error()
	}
	if !st.RunningSince.IsZero() {
		if ran := now.Sub(st.RunningSince); ran > cfg.CronMaxRun {
			return StatusUnhealthy, fmt.Sprintf("run in progress for %v since %s, longer than %v",
				ran.Round(time.Second), stamp(st.RunningSince), cfg.CronMaxRun)
		}
	}
	if !st.LastRunAt.IsZero() && st.LastExitCode != 0 {
		return StatusUnhealthy, fmt.Sprintf("last run exited %d at %s", st.LastExitCode, stamp(st.LastRunAt))
	}
	if !st.RunningSince.IsZero() {
		return StatusHealthy, "run in progress since " + stamp(st.RunningSince)
	}
	anchor := st.CreatedAt
	if !st.LastRunAt.IsZero() {
		if end := st.LastRunAt.Add(st.LastDuration); end.After(anchor) {
			anchor = end
		}
	}
	if anchor.IsZero() {
		return StatusHealthy, "no run yet"
	}
	due, err := NextFire(st.Schedule, anchor)
	if err != nil {
		return StatusUnhealthy, err.Error()
	}
	if now.Sub(due) > cfg.CronGrace {
		return StatusUnhealthy, "late: expected a run at " + stamp(due)
	}
	if st.LastRunAt.IsZero() {
		return StatusHealthy, "no run yet; first due at " + stamp(due)
	}
	return StatusHealthy, fmt.Sprintf("last run exited 0 at %s", stamp(st.LastRunAt))
}

// stamp formats t for a reason: UTC, whole seconds.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
