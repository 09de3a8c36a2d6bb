package pki

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// NeedsRenewal reports whether a certificate valid from notBefore to
// notAfter should be renewed at now: after two thirds of its lifetime, which
// leaves a third (10 days of the default 30) to get a new one.
func NeedsRenewal(notBefore, notAfter, now time.Time) bool {
	return !now.Before(renewAt(notBefore, notAfter))
}

func renewAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// RenewFunc asks the CA (a voter, over mutual TLS with the current
// certificate) to sign csrPEM and returns the new certificate in PEM.
type RenewFunc func(ctx context.Context, csrPEM []byte) (certPEM []byte, err error)

// Renewer keeps Creds fresh: when NeedsRenewal says so it makes a new key and
// request for the current identity, calls Renew, swaps the answer in and
// saves it to Dir (when not empty). Failures are retried with a doubling
// backoff from MinBackoff to MaxBackoff. Run owns its goroutine; it ends
// with its context. Renew is expected to authenticate with the current
// certificate, so a node whose certificate expired (offline for the last
// third of its lifetime) cannot renew: it enrolls again with a join token.
type Renewer struct {
	Creds      *Credentials
	Renew      RenewFunc
	Dir        string
	Now        func() time.Time // time.Now when nil
	Logger     *slog.Logger     // slog.Default() when nil
	MinBackoff time.Duration    // 1 s when zero
	MaxBackoff time.Duration    // 5 min when zero
}

// Run renews until ctx ends and returns ctx's error.
func (r *Renewer) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		wait := time.Duration(0)
		if backoff > 0 {
			wait = backoff
		} else if at := renewAt(r.Creds.NotBefore(), r.Creds.NotAfter()); r.now().Before(at) {
			wait = at.Sub(r.now())
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if !NeedsRenewal(r.Creds.NotBefore(), r.Creds.NotAfter(), r.now()) {
			backoff = 0
			continue
		}
		if err := r.RenewNow(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			backoff = r.next(backoff)
			r.logger().Warn("certificate renewal failed", "node", r.Creds.NodeID(), "retry_in", backoff,
				"expires", r.Creds.NotAfter(), "err", err)
			continue
		}
		backoff = 0
	}
}

// RenewNow renews once, whatever the certificate's age.
func (r *Renewer) RenewNow(ctx context.Context) error {
	id := r.Creds.Identity()
	keyPEM, csrPEM, err := NewKeyAndCSR(id)
	if err != nil {
		return err
	}
	certPEM, err := r.Renew(ctx, csrPEM)
	if err != nil {
		return fmt.Errorf("renew certificate of %s: %w", id.NodeID, err)
	}
	if err := r.Creds.Swap(certPEM, keyPEM); err != nil {
		return fmt.Errorf("renew certificate of %s: %w", id.NodeID, err)
	}
	if r.Dir != "" {
		if err := r.Creds.Save(r.Dir); err != nil {
			return fmt.Errorf("renew certificate of %s: %w", id.NodeID, err)
		}
	}
	r.logger().Info("certificate renewed", "node", id.NodeID, "serial", r.Creds.Serial(), "expires", r.Creds.NotAfter())
	return nil
}

func (r *Renewer) next(b time.Duration) time.Duration {
	lo, hi := r.MinBackoff, r.MaxBackoff
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 5 * time.Minute
	}
	b *= 2
	if b < lo {
		b = lo
	}
	return min(b, hi)
}

func (r *Renewer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Renewer) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
