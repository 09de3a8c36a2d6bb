package notify

import (
	"crypto/cipher"
	"log/slog"
	"net/http"
	"time"

	"github.com/dropmesh/dropmesh/node/egress"
)

// Config holds the notifier's timings and limits. Zero fields take the
// value of DefaultConfig.
type Config struct {
	// HTTPClient posts the payloads. Its Timeout bounds one attempt: longer
	// tolerates a slow receiver, shorter frees a worker stuck on a dead one.
	// The default is an egress client: no loopback, link-local or private
	// receiver, no redirect (the agent passes one with the cluster's
	// egress_allow ranges).
	HTTPClient *http.Client
	// Logger gets delivery failures (Warn) and successes (Debug). Webhook URLs
	// carry secrets (Slack and Discord tokens), so only the id and host are logged.
	Logger *slog.Logger
	// Sealer opens the webhooks' sealed URLs (the cluster's state key). A
	// webhook whose URL does not open is skipped (logged by id).
	Sealer cipher.AEAD
	// MaxAttempts bounds the tries of one event to one target. More rides out
	// a longer outage of the receiver; fewer drops sooner and keeps that
	// target's queue moving.
	MaxAttempts int
	// Backoff is the wait before the second attempt; it doubles after each
	// failure up to MaxBackoff. A Retry-After from the receiver (429, 503) is
	// honoured up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Now stamps the AdvanceNotified commands.
	Now func() time.Time
	// MaxBatch is how many deliverable events one cursor commit covers.
	// Larger means fewer raft writes under an event storm; the events of a
	// batch that are in flight when the leader dies are the ones lost.
	MaxBatch int
	// QueueSize bounds the deliveries waiting for one target. A target down
	// long enough to fill it loses the newest events (logged), never memory.
	QueueSize int
}

// DefaultConfig returns the timings the agent uses.
func DefaultConfig() Config {
	return Config{
		HTTPClient:  egress.Policy{}.Client(10 * time.Second),
		Logger:      slog.New(slog.DiscardHandler),
		MaxAttempts: 4,
		Backoff:     time.Second,
		MaxBackoff:  30 * time.Second,
		Now:         time.Now,
		MaxBatch:    100,
		QueueSize:   500,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HTTPClient == nil {
		c.HTTPClient = d.HTTPClient
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.Backoff <= 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	return c
}
