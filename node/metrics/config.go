package metrics

import (
	"errors"
	"fmt"
	"log/slog"
)

// ErrInvalidConfig marks a Config that NewWithConfig refuses.
var ErrInvalidConfig = errors.New("metrics: invalid config")

// Config holds the histogram buckets and the limits of the metrics
// endpoint. Every bucket list is in seconds. More buckets give finer
// quantiles in Grafana but cost one series per bucket per label set on every
// scrape; the defaults span what each figure really takes on a droplet.
type Config struct {
	// Logger gets scrape errors; nil discards.
	Logger *slog.Logger
	// CommitBuckets are for raft commits (Store.Apply on the leader): a few
	// milliseconds on a VPC, seconds when a quorum is slow or lost.
	CommitBuckets []float64
	// ApplyBuckets are for the FSM applying entries: microseconds to
	// milliseconds unless the state is very large.
	ApplyBuckets []float64
	// ReconcileBuckets are for one reconcile pass: milliseconds when
	// nothing changes, minutes when an image is pulled or built.
	ReconcileBuckets []float64
	// APIBuckets are for API requests: milliseconds for reads, seconds for
	// writes that wait on raft, long for log streams and blocking reads.
	APIBuckets []float64
	// ProbeRTTBuckets are for gossip probe round trips: sub-millisecond on
	// loopback, a few milliseconds across a region.
	ProbeRTTBuckets []float64
	// MaxScrapesInFlight bounds concurrent scrapes (0: no bound). A scrape
	// reads the whole local state once; the bound keeps a scraping storm from
	// holding the state's read lock in many goroutines at once.
	MaxScrapesInFlight int
	// RuntimeMetrics adds the Go runtime (go_*) and process (process_*)
	// collectors: useful on a droplet, noise in tests that count series.
	RuntimeMetrics bool
}

// DefaultConfig returns the defaults (see the field comments).
func DefaultConfig() Config {
	return Config{
		CommitBuckets:      []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		ApplyBuckets:       []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5},
		ReconcileBuckets:   []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		APIBuckets:         []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		ProbeRTTBuckets:    []float64{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5},
		MaxScrapesInFlight: 4,
		RuntimeMetrics:     true,
	}
}

// validate refuses buckets that are empty, not positive or not strictly
// increasing, and a negative scrape bound.
func (c Config) validate() error {
	for _, b := range []struct {
		name string
		v    []float64
	}{
		{"CommitBuckets", c.CommitBuckets},
		{"ApplyBuckets", c.ApplyBuckets},
		{"ReconcileBuckets", c.ReconcileBuckets},
		{"APIBuckets", c.APIBuckets},
		{"ProbeRTTBuckets", c.ProbeRTTBuckets},
	} {
		if len(b.v) == 0 {
			return fmt.Errorf("%w: %s is empty", ErrInvalidConfig, b.name)
		}
		for i, x := range b.v {
			if !(x > 0) || x > 1e9 {
				return fmt.Errorf("%w: %s[%d] = %v: want a positive number of seconds", ErrInvalidConfig, b.name, i, x)
			}
			if i > 0 && x <= b.v[i-1] {
				return fmt.Errorf("%w: %s must be strictly increasing (%v after %v)", ErrInvalidConfig, b.name, x, b.v[i-1])
			}
		}
	}
	if c.MaxScrapesInFlight < 0 {
		return fmt.Errorf("%w: MaxScrapesInFlight = %d: want 0 (no bound) or more", ErrInvalidConfig, c.MaxScrapesInFlight)
	}
	return nil
}
