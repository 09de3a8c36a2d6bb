package acme

import (
	"context"
	"crypto/cipher"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the duty needs of the node: the replicated state, its
// change signal, and a leader-only commit (node.Agent provides them).
type Source interface {
	View(fn func(s *raftfsm.State))
	Changed() <-chan struct{}
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}

// Config holds the duty's dependencies and timings. Zero fields take the
// values of DefaultConfig.
type Config struct {
	// NodeID is recorded on the orders this node places.
	NodeID string
	Logger *slog.Logger
	// Sealer seals and opens the account and certificate keys.
	Sealer cipher.AEAD
	// DNS builds the Cloudflare client for one order (the token may have
	// changed since the last); nil or an error fails the order.
	DNS func() (cloudops.ChallengeDNS, error)
	// Resolvers are DNS servers (host:port) asked whether a challenge
	// record is visible before the CA is told to look; empty takes the
	// state's (raftfsm.ACMEConfig.Resolvers), and when that is empty too
	// the zone's authoritative name servers (found through the system
	// resolver) on port 53.
	Resolvers []string
	// PropagationTimeout bounds the wait for a record to be visible;
	// PropagationInterval is the time between looks.
	PropagationTimeout  time.Duration
	PropagationInterval time.Duration
	// PollInterval and PollTimeout are how often and how long the CA is
	// polled for an authorization or an order in progress.
	PollInterval time.Duration
	PollTimeout  time.Duration
	// OrderTimeout bounds one order from start to download.
	OrderTimeout time.Duration
	// Backoff is the wait after a first failure; it doubles with each
	// further failure of the same certificate up to MaxBackoff, plus up to
	// a quarter more of random jitter. Let's Encrypt limits failed
	// validations per account and host: minutes, not seconds.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxIdle is the longest the duty sleeps without a change of the state
	// (it wakes at the next renewal or retry time anyway).
	MaxIdle time.Duration
	Now     func() time.Time
	// Jitter returns a random fraction in [0, 1).
	Jitter func() float64
}

// DefaultConfig returns the timings the agent uses.
func DefaultConfig() Config {
	return Config{
		Logger:              slog.New(slog.DiscardHandler),
		PropagationTimeout:  2 * time.Minute,
		PropagationInterval: 2 * time.Second,
		PollInterval:        time.Second,
		PollTimeout:         2 * time.Minute,
		OrderTimeout:        10 * time.Minute,
		Backoff:             5 * time.Minute,
		MaxBackoff:          24 * time.Hour,
		MaxIdle:             time.Hour,
		Now:                 time.Now,
		Jitter:              rand.Float64,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.PropagationTimeout, &d.PropagationTimeout}, {&c.PropagationInterval, &d.PropagationInterval},
		{&c.PollInterval, &d.PollInterval}, {&c.PollTimeout, &d.PollTimeout}, {&c.OrderTimeout, &d.OrderTimeout},
		{&c.Backoff, &d.Backoff}, {&c.MaxBackoff, &d.MaxBackoff}, {&c.MaxIdle, &d.MaxIdle},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Jitter == nil {
		c.Jitter = d.Jitter
	}
	return c
}
