package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNextFire(t *testing.T) {
	for _, tc := range []struct {
		schedule, after, want string
	}{
		{"* * * * *", "2026-03-01T12:00:30Z", "2026-03-01T12:01:00Z"},
		{"* * * * *", "2026-03-01T12:00:00Z", "2026-03-01T12:01:00Z"}, // strictly after
		{"*/5 * * * *", "2026-03-01T12:01:00Z", "2026-03-01T12:05:00Z"},
		{"0 9 * * 1-5", "2026-03-06T10:00:00Z", "2026-03-09T09:00:00Z"}, // Friday -> Monday
		{"30 2 1 * *", "2026-03-01T03:00:00Z", "2026-04-01T02:30:00Z"},
		{"@hourly", "2026-03-01T12:00:30Z", "2026-03-01T13:00:00Z"},
		{"@daily", "2026-03-01T12:00:00Z", "2026-03-02T00:00:00Z"},
		{"@every 1m", "2026-03-01T12:00:30Z", "2026-03-01T12:01:30Z"},
		{"@every 1s", "2026-03-01T12:00:30.25Z", "2026-03-01T12:00:31Z"},
		{"@every 1h30m", "2026-03-01T12:00:00Z", "2026-03-01T13:30:00Z"},
		{"CRON_TZ=UTC 0 9 * * *", "2026-03-01T12:00:00+02:00", "2026-03-02T09:00:00Z"},
		{"0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
	} {
		got, err := NextFire(tc.schedule, at(tc.after))
		if err != nil {
			t.Errorf("NextFire(%q, %s): %v", tc.schedule, tc.after, err)
			continue
		}
		if !got.Equal(at(tc.want)) {
			t.Errorf("NextFire(%q, %s) = %s, want %s", tc.schedule, tc.after, got.UTC().Format(time.RFC3339), tc.want)
		}
		if err := ValidateSchedule(tc.schedule); err != nil {
			t.Errorf("ValidateSchedule(%q): %v", tc.schedule, err)
		}
	}
}

func TestBadSchedules(t *testing.T) {
	for _, s := range []string{
		"",
		"* * * *",
		"0 * * * * *", // seconds are not a field here
		"61 * * * *",
		"* 25 * * *",
		"* * 0 * *",
		"* * * 13 *",
		"* * * * 8",
		"a b c d e",
		"@bogus",
		"@every",
		"@every soon",
		"@every 500ms",
		"@every 0s",
		"@every -1m",
		"TZ=UTC",
		"CRON_TZ=Mars/Olympus * * * * *",
		strings.Repeat("* ", 200),
	} {
		if err := ValidateSchedule(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateSchedule(%q): got %v, want ErrInvalid", s, err)
		}
		if _, err := NextFire(s, time.Now()); err == nil {
			t.Errorf("NextFire(%q) accepted it", s)
		}
	}
	// A day that never comes.
	if err := ValidateSchedule("0 0 30 2 *"); !errors.Is(err, ErrNoFire) {
		t.Fatalf("30 February: got %v, want ErrNoFire", err)
	}
	if _, err := NextFire("0 0 30 2 *", time.Now()); !errors.Is(err, ErrNoFire) {
		t.Fatalf("30 February: got %v, want ErrNoFire", err)
	}
}

func FuzzValidateSchedule(f *testing.F) {
	for _, s := range []string{"* * * * *", "@every 1s", "TZ=UTC", "CRON_TZ=UTC @hourly", "0-59/7 1,2,3 */2 JAN-MAR MON-FRI", "@every 1000000h"} {
		f.Add(s)
	}
	after := at("2026-03-01T12:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateSchedule(s) != nil {
			return
		}
		next, err := NextFire(s, after)
		if err != nil {
			t.Fatalf("valid %q but NextFire: %v", s, err)
		}
		if !next.After(after) {
			t.Fatalf("%q: next %s not after %s", s, next, after)
		}
	})
}

func BenchmarkNextFire(b *testing.B) {
	after := at("2026-03-01T12:00:30Z")
	for b.Loop() {
		if _, err := NextFire("*/5 9-17 * * 1-5", after); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/call")
}
