package health

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid marks bad input: a bad configuration, log pattern, schedule or
// probe target. Nothing is changed when it is returned.
var ErrInvalid = errors.New("invalid")

// Config holds the timings and limits of the checks. Start from
// DefaultConfig and change what you need.
type Config struct {
	// ProbeTimeout bounds one HTTP or TCP probe. Shorter finds a dead port
	// sooner but calls a slow (busy, GC-pausing) service unhealthy.
	ProbeTimeout time.Duration
	// LogPattern is the regular expression (RE2) that marks an error line;
	// "" means DefaultLogPattern. JSON lines are also judged by their level
	// field whatever the pattern (see LogScanner).
	LogPattern string
	// MaxLogBytes caps the log read by one check. Higher finds an error line
	// in a chatty container more surely but costs the agent more memory
	// bandwidth and Docker time every interval.
	MaxLogBytes int64
	// LogTimeout bounds reading the log for one scan. Shorter keeps a stalled
	// Docker from holding up the health round; too short gives up on a big
	// log on a busy node (the next check reads those lines again).
	LogTimeout time.Duration
	// FirstScanWindow is how far back the first scan of a container looks
	// (no earlier than its start). Longer reports older error lines after an
	// agent restart; shorter may miss a crash logged just before it.
	FirstScanWindow time.Duration
	// CronGrace is how late a scheduled run may start before the job is
	// called late. Shorter flags a stuck scheduler sooner but risks false
	// alarms when runs start slowly (image pull, busy node).
	CronGrace time.Duration
	// CronMaxRun is how long a run may take before the job is unhealthy.
	// Too short flags long legitimate jobs (backups); too long hides a hung one.
	CronMaxRun time.Duration
}

// DefaultConfig returns the configuration the agent uses.
func DefaultConfig() Config {
	return Config{
		ProbeTimeout:    2 * time.Second,
		LogPattern:      "",
		MaxLogBytes:     1 << 20,
		LogTimeout:      10 * time.Second,
		FirstScanWindow: 5 * time.Minute,
		CronGrace:       time.Minute,
		CronMaxRun:      time.Hour,
	}
}

// Validate reports the first bad field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("%w: health config ProbeTimeout %v: must be positive", ErrInvalid, c.ProbeTimeout)
	case c.MaxLogBytes <= 0:
		return fmt.Errorf("%w: health config MaxLogBytes %d: must be positive", ErrInvalid, c.MaxLogBytes)
	case c.LogTimeout <= 0:
		return fmt.Errorf("%w: health config LogTimeout %v: must be positive", ErrInvalid, c.LogTimeout)
	case c.FirstScanWindow <= 0:
		return fmt.Errorf("%w: health config FirstScanWindow %v: must be positive", ErrInvalid, c.FirstScanWindow)
	case c.CronGrace < 0:
		return fmt.Errorf("%w: health config CronGrace %v: must not be negative", ErrInvalid, c.CronGrace)
	case c.CronMaxRun <= 0:
		return fmt.Errorf("%w: health config CronMaxRun %v: must be positive", ErrInvalid, c.CronMaxRun)
	}
	if _, err := NewLogScanner(c.LogPattern); err != nil {
		return fmt.Errorf("health config LogPattern: %w", err)
	}
	return nil
}
