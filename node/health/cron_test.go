package health

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCronCheck(t *testing.T) {
	c := newTestChecker(t, func(cfg *Config) {
		cfg.CronGrace = time.Minute
		cfg.CronMaxRun = time.Hour
	})
	created := at("2026-03-01T11:00:00Z")
	for _, tc := range []struct {
		name       string
		st         CronState
		now        string
		want       Status
		wantReason string
	}{
		{
			name:       "every minute job late by 2 minutes",
			st:         CronState{Schedule: "* * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastDuration: 2 * time.Second},
			now:        "2026-03-01T12:03:00Z",
			want:       StatusUnhealthy,
			wantReason: "late: expected a run at 2026-03-01T12:01:00Z",
		},
		{
			name:       "every minute job within the grace",
			st:         CronState{Schedule: "* * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastDuration: 2 * time.Second},
			now:        "2026-03-01T12:01:50Z",
			want:       StatusHealthy,
			wantReason: "last run exited 0 at 2026-03-01T12:00:00Z",
		},
		{
			name:       "failed last run",
			st:         CronState{Schedule: "*/5 * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastExitCode: 2, LastDuration: time.Second},
			now:        "2026-03-01T12:01:00Z",
			want:       StatusUnhealthy,
			wantReason: "last run exited 2 at 2026-03-01T12:00:00Z",
		},
		{
			name:       "run that did not start",
			st:         CronState{Schedule: "*/5 * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastExitCode: -1},
			now:        "2026-03-01T12:01:00Z",
			want:       StatusUnhealthy,
			wantReason: "last run exited -1 at",
		},
		{
			name:       "running too long",
			st:         CronState{Schedule: "@daily", CreatedAt: created, RunningSince: at("2026-03-01T10:00:00Z")},
			now:        "2026-03-01T12:00:05Z",
			want:       StatusUnhealthy,
			wantReason: "run in progress for 2h0m5s since 2026-03-01T10:00:00Z, longer than 1h0m0s",
		},
		{
			name:       "running within the limit, though its fire time passed",
			st:         CronState{Schedule: "* * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T11:00:00Z"), RunningSince: at("2026-03-01T11:40:00Z")},
			now:        "2026-03-01T12:00:00Z",
			want:       StatusHealthy,
			wantReason: "run in progress since 2026-03-01T11:40:00Z",
		},
		{
			name:       "failed run, a new one in progress",
			st:         CronState{Schedule: "* * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T11:58:00Z"), LastExitCode: 1, RunningSince: at("2026-03-01T11:59:00Z")},
			now:        "2026-03-01T11:59:30Z",
			want:       StatusUnhealthy,
			wantReason: "last run exited 1",
		},
		{
			name:       "first run not yet due",
			st:         CronState{Schedule: "0 * * * *", CreatedAt: at("2026-03-01T12:00:30Z")},
			now:        "2026-03-01T12:10:00Z",
			want:       StatusHealthy,
			wantReason: "no run yet; first due at 2026-03-01T13:00:00Z",
		},
		{
			name:       "fire time before the job existed is not missed",
			st:         CronState{Schedule: "0 * * * *", CreatedAt: at("2026-03-01T12:00:01Z")},
			now:        "2026-03-01T12:59:59Z",
			want:       StatusHealthy,
			wantReason: "no run yet",
		},
		{
			name:       "first run missed",
			st:         CronState{Schedule: "0 * * * *", CreatedAt: at("2026-03-01T11:30:00Z")},
			now:        "2026-03-01T12:05:00Z",
			want:       StatusUnhealthy,
			wantReason: "late: expected a run at 2026-03-01T12:00:00Z",
		},
		{
			name:       "fire times during a long run are skipped, not missed",
			st:         CronState{Schedule: "* * * * *", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastDuration: 90 * time.Second},
			now:        "2026-03-01T12:02:30Z",
			want:       StatusHealthy,
			wantReason: "last run exited 0",
		},
		{
			name:       "@every 1s, ran recently",
			st:         CronState{Schedule: "@every 1s", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastDuration: 500 * time.Millisecond},
			now:        "2026-03-01T12:00:05Z",
			want:       StatusHealthy,
			wantReason: "last run exited 0",
		},
		{
			name:       "@every 1s, stopped running",
			st:         CronState{Schedule: "@every 1s", CreatedAt: created, LastRunAt: at("2026-03-01T12:00:00Z"), LastDuration: 500 * time.Millisecond},
			now:        "2026-03-01T12:02:00Z",
			want:       StatusUnhealthy,
			wantReason: "late: expected a run at 2026-03-01T12:00:01Z",
		},
		{
			name:       "no creation time and no run: cannot be late",
			st:         CronState{Schedule: "* * * * *"},
			now:        "2026-03-01T12:02:00Z",
			want:       StatusHealthy,
			wantReason: "no run yet",
		},
		{
			name:       "invalid schedule",
			st:         CronState{Schedule: "every day", CreatedAt: created},
			now:        "2026-03-01T12:02:00Z",
			want:       StatusUnhealthy,
			wantReason: `schedule "every day"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			r := c.Check(context.Background(), "job", at(tc.now), Target{Kind: KindCron, Cron: &st})
			if r.Status != tc.want || !strings.Contains(r.Reason, tc.wantReason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Status, r.Reason, tc.want, tc.wantReason)
			}
			if !r.CheckedAt.Equal(at(tc.now)) {
				t.Fatalf("checked at %s", r.CheckedAt)
			}
		})
	}
}

func TestCronWithoutState(t *testing.T) {
	c := newTestChecker(t, nil)
	r := c.Check(context.Background(), "job", time.Now(), Target{Kind: KindCron})
	if r.Status != StatusUnhealthy || !strings.Contains(r.Reason, "cron job without run state") {
		t.Fatalf("got %+v", r)
	}
}

// TestCronGraceBoundary walks the clock past the due time of an every
// minute job: healthy up to due+grace, unhealthy after.
func TestCronGraceBoundary(t *testing.T) {
	c := newTestChecker(t, func(cfg *Config) { cfg.CronGrace = 30 * time.Second })
	st := CronState{Schedule: "* * * * *", CreatedAt: at("2026-03-01T11:00:00Z"), LastRunAt: at("2026-03-01T12:00:00Z")}
	due := at("2026-03-01T12:01:00Z")
	for _, tc := range []struct {
		after time.Duration
		want  Status
	}{{0, StatusHealthy}, {30 * time.Second, StatusHealthy}, {30*time.Second + time.Millisecond, StatusUnhealthy}, {time.Hour, StatusUnhealthy}} {
		if r := c.Check(context.Background(), "job", due.Add(tc.after), Target{Kind: KindCron, Cron: &st}); r.Status != tc.want {
			t.Errorf("due+%v: got %s %q, want %s", tc.after, r.Status, r.Reason, tc.want)
		}
	}
}
