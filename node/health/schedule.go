package health

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrNoFire: a schedule that never fires again (a date that does not
// exist, such as 30 February).
var ErrNoFire = errors.New("schedule never fires")

// maxScheduleLen bounds a schedule string; real ones are a few dozen bytes.
const maxScheduleLen = 256

// scheduleParser reads the standard five fields (minute hour day-of-month
// month day-of-week) and the descriptors @yearly, @annually, @monthly,
// @weekly, @daily, @midnight, @hourly and @every <duration>, optionally
// after CRON_TZ=<zone> or TZ=<zone>.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule parses s, refusing what the library would misread or
// choke on: a zone prefix without a schedule (which panics in cron v3.0.1),
// @every below one second (silently rounded up) and schedules that never
// fire.
func parseSchedule(s string) (sched cron.Schedule, err error) {
	if s == "" || len(s) > maxScheduleLen {
		return nil, fmt.Errorf("%w: schedule %q: want 5 cron fields or a descriptor such as @hourly or @every 5m", ErrInvalid, truncate(s, 40))
	}
	body := s
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return nil, fmt.Errorf("%w: schedule %q: a time zone needs a schedule after it", ErrInvalid, s)
		}
		body = strings.TrimSpace(s[i:])
	}
	if rest, ok := strings.CutPrefix(body, "@every "); ok {
		d, perr := time.ParseDuration(strings.TrimSpace(rest))
		if perr != nil {
			return nil, fmt.Errorf("%w: schedule %q: %w", ErrInvalid, s, perr)
		}
		if d < time.Second {
			return nil, fmt.Errorf("%w: schedule %q: @every needs at least 1s", ErrInvalid, s)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("%w: schedule %q: %v", ErrInvalid, s, r)
		}
	}()
	sched, err = scheduleParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %q: %w", ErrInvalid, s, err)
	}
	return sched, nil
}

// ValidateSchedule reports whether s is a schedule dropmesh can run:
// 5 cron fields or a descriptor, that fires at least once more.
func ValidateSchedule(s string) error {
	sched, err := parseSchedule(s)
	if err != nil {
		return err
	}
	// A schedule that fires never from now fires never from any time
	// later than five years back, which is how far cron looks.
	if sched.Next(time.Now()).IsZero() {
		return fmt.Errorf("%w: %q", ErrNoFire, s)
	}
	return nil
}

// NextFire returns the first time strictly after `after` at which schedule
// fires (whole seconds). Without a CRON_TZ= prefix the fields are read in
// after's location. @every schedules count from `after` itself.
func NextFire(schedule string, after time.Time) (time.Time, error) {
	sched, err := parseSchedule(schedule)
	if err != nil {
		return time.Time{}, err
	}
	next := sched.Next(after)
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("%w: %q after %s", ErrNoFire, schedule, after.Format(time.RFC3339))
	}
	return next, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
