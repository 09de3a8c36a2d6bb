package backup

import (
	"crypto/cipher"
	"log/slog"
	"net/http"
	"time"
)

// Config holds the backup timings and limits. Zero fields take the value
// of DefaultConfig.
type Config struct {
	Logger *slog.Logger
	// Key seals and authenticates every backup (DeriveKey of the cluster
	// secret); Backup refuses to run without it.
	Key cipher.AEAD
	// Now names and stamps the backups and decides when one is due.
	Now func() time.Time
	// HTTPClient talks to the bucket. Its Timeout bounds one request: it must
	// allow uploading the largest snapshot on the slowest link.
	HTTPClient *http.Client
	// DefaultInterval applies when the settings leave the interval at 0.
	// Shorter loses less on a disaster and stores more copies.
	DefaultInterval time.Duration
	// DefaultKeep applies when the settings leave Keep at 0.
	DefaultKeep int
	// RetryInterval is the wait after a failed backup before the next try:
	// shorter recovers sooner from a blip, longer spares a target that is down.
	RetryInterval time.Duration
	// Poll is how often Run rereads the settings when its source cannot
	// signal changes; a source that can (StoreSource) makes it react at once.
	Poll time.Duration
	// MaxSnapshotBytes bounds the raft snapshot read into memory (the state
	// lives in memory anyway; this catches a runaway file).
	MaxSnapshotBytes int64
}

// DefaultConfig returns the timings the agent uses.
func DefaultConfig() Config {
	return Config{
		Logger:           slog.New(slog.DiscardHandler),
		Now:              time.Now,
		HTTPClient:       &http.Client{Timeout: 5 * time.Minute},
		DefaultInterval:  24 * time.Hour,
		DefaultKeep:      7,
		RetryInterval:    5 * time.Minute,
		Poll:             time.Minute,
		MaxSnapshotBytes: 512 << 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = d.HTTPClient
	}
	if c.DefaultInterval <= 0 {
		c.DefaultInterval = d.DefaultInterval
	}
	if c.DefaultKeep <= 0 {
		c.DefaultKeep = d.DefaultKeep
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = d.RetryInterval
	}
	if c.Poll <= 0 {
		c.Poll = d.Poll
	}
	if c.MaxSnapshotBytes <= 0 {
		c.MaxSnapshotBytes = d.MaxSnapshotBytes
	}
	return c
}
