package bootstrap

import (
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
)

// Config holds the timings and sizes of a bootstrap. DefaultConfig suits
// DigitalOcean; tests shorten everything.
type Config struct {
	// PollInterval is how often droplet and action status and the seed's
	// agent are asked. Shorter notices progress sooner but spends
	// DigitalOcean's rate limit (250 requests a minute).
	PollInterval time.Duration
	// Retry is the retry policy of every cloud request.
	Retry cloudops.RetryPolicy
	// DropletTimeout bounds the wait for a new droplet to turn active.
	DropletTimeout time.Duration
	// SSHReadyTimeout bounds the wait for the builder's SSH server to let us
	// in: a fresh droplet takes a minute or two to boot and run cloud-init.
	SSHReadyTimeout time.Duration
	// SSHDialTimeout bounds one connection attempt (TCP and handshake).
	SSHDialTimeout time.Duration
	// SSHRetryInterval is the pause between connection attempts.
	SSHRetryInterval time.Duration
	// InstallTimeout bounds the install script (apt, Docker, nginx): long
	// enough for a slow mirror, short enough to notice a hung apt.
	InstallTimeout time.Duration
	// ActionTimeout bounds one droplet or image action: a power-off, a
	// snapshot (minutes for a 25 GB disk) or a transfer between regions
	// (can take tens of minutes).
	ActionTimeout time.Duration
	// AgentTimeout bounds the wait for the seed's agent to answer: boot,
	// cloud-init, the agent's start and, through the UI host, DNS.
	AgentTimeout time.Duration
	// GrowTimeout bounds the wait for the leader to grow the cluster to the
	// wanted size, one droplet at a time.
	GrowTimeout time.Duration
	// CleanupTimeout bounds deleting the builder's droplet, key and firewall
	// after a failure (they cost money or open SSH: worth waiting for).
	CleanupTimeout time.Duration
	// BuilderSize is the builder droplet's size. The snapshot's minimum disk
	// is the builder's disk, so the smallest size keeps the snapshot usable
	// by every size.
	BuilderSize string
	// BuilderImage is the public image the builder starts from.
	BuilderImage string
}

// DefaultConfig returns the timings for DigitalOcean.
func DefaultConfig() Config {
	return Config{
		PollInterval:     3 * time.Second,
		Retry:            cloudops.DefaultRetryPolicy(),
		DropletTimeout:   5 * time.Minute,
		SSHReadyTimeout:  5 * time.Minute,
		SSHDialTimeout:   15 * time.Second,
		SSHRetryInterval: 5 * time.Second,
		InstallTimeout:   20 * time.Minute,
		ActionTimeout:    45 * time.Minute,
		AgentTimeout:     15 * time.Minute,
		GrowTimeout:      30 * time.Minute,
		CleanupTimeout:   2 * time.Minute,
		BuilderSize:      "s-1vcpu-1gb",
		BuilderImage:     "debian-12-x64",
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.PollInterval, d.PollInterval)
	set(&c.DropletTimeout, d.DropletTimeout)
	set(&c.SSHReadyTimeout, d.SSHReadyTimeout)
	set(&c.SSHDialTimeout, d.SSHDialTimeout)
	set(&c.SSHRetryInterval, d.SSHRetryInterval)
	set(&c.InstallTimeout, d.InstallTimeout)
	set(&c.ActionTimeout, d.ActionTimeout)
	set(&c.AgentTimeout, d.AgentTimeout)
	set(&c.GrowTimeout, d.GrowTimeout)
	set(&c.CleanupTimeout, d.CleanupTimeout)
	if c.BuilderSize == "" {
		c.BuilderSize = d.BuilderSize
	}
	if c.BuilderImage == "" {
		c.BuilderImage = d.BuilderImage
	}
	return c
}
