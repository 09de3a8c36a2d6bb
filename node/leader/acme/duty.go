package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Run obtains and renews certificates until ctx ends. The leader runs it
// while it leads. Every step re-plans from the state, so it is safe to
// stop anywhere: a new leader resumes an open order.
func Run(ctx context.Context, src Source, cfg Config) {
	cfg = cfg.withDefaults()
	d := &duty{src: src, cfg: cfg}
	for {
		changed := src.Changed()
		wait := d.step(ctx)
		if ctx.Err() != nil {
			return
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// duty is Run's state between steps.
type duty struct {
	src Source
	cfg Config
}

// errAborted marks an order stopped without an outcome (leadership or
// the context lost): it stays open for the next leader.
var errAborted = errors.New("order aborted, left open")

// step does one piece of work and returns how long to wait for the next.
func (d *duty) step(ctx context.Context) time.Duration {
	now := d.cfg.Now()
	var w work
	var st snapshot
	d.src.View(func(s *raftfsm.State) {
		w = planWork(s, now)
		st = takeSnapshot(s)
	})
	for _, name := range w.deletes {
		if _, err := d.src.Apply(ctx, &raftfsm.DeleteIssuedCert{At: d.cfg.Now(), Name: name}); err != nil {
			d.cfg.Logger.Warn("delete the certificate of an undeployed service", "cert", name, "err", err)
			return d.cfg.Backoff
		}
		d.cfg.Logger.Info("certificate removed: no service asks for it", "cert", name)
	}
	for _, o := range w.abandon {
		d.resolveFailed(ctx, o, "the certificate's hosts changed; a new order follows", st.failures[o.Cert], false)
	}
	if len(w.deletes) > 0 || len(w.abandon) > 0 {
		return 0 // re-plan on the new state
	}
	var order raftfsm.ACMEOrder
	switch {
	case w.resume != nil:
		order = *w.resume
		d.cfg.Logger.Info("resuming an open certificate order", "cert", order.Cert, "order", order.ID, "url", order.URL)
	case w.issue != "":
		o, err := d.record(ctx, w.issue, w.issueHosts)
		if err != nil {
			d.cfg.Logger.Warn("record a certificate order", "cert", w.issue, "err", err)
			return d.cfg.Backoff
		}
		order = o
	default:
		if w.next.IsZero() {
			return d.cfg.MaxIdle
		}
		return min(max(w.next.Sub(now), 0), d.cfg.MaxIdle)
	}
	octx, cancel := context.WithTimeout(ctx, d.cfg.OrderTimeout)
	defer cancel()
	chain, err := d.fulfil(octx, st, order)
	switch {
	case err == nil:
		if _, err := d.src.Apply(ctx, &raftfsm.ResolveACMEOrder{At: d.cfg.Now(), ID: order.ID, Status: raftfsm.OrderDone, CertPEM: chain}); err != nil {
			d.cfg.Logger.Warn("commit the issued certificate; the order stays open and is resumed", "cert", order.Cert, "err", err)
			return d.cfg.Backoff
		}
		d.cfg.Logger.Info("certificate issued", "cert", order.Cert, "hosts", order.Hosts)
	case errors.Is(err, errAborted) || ctx.Err() != nil:
		d.cfg.Logger.Info("certificate order interrupted; it stays open", "cert", order.Cert, "err", err)
		return d.cfg.Backoff
	default:
		d.cfg.Logger.Warn("certificate order failed", "cert", order.Cert, "hosts", order.Hosts, "err", err)
		d.resolveFailed(ctx, order, err.Error(), st.failures[order.Cert], true)
	}
	return 0
}

// resolveFailed closes an order as failed; with counted, the next attempt
// of its certificate waits the backoff.
func (d *duty) resolveFailed(ctx context.Context, o raftfsm.ACMEOrder, msg string, failures int, counted bool) {
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	var next time.Time
	if counted {
		next = d.cfg.Now().Add(backoff(d.cfg, failures+1))
	}
	if _, err := d.src.Apply(ctx, &raftfsm.ResolveACMEOrder{At: d.cfg.Now(), ID: o.ID, Status: raftfsm.OrderFailed, Error: msg, NextAttempt: next}); err != nil {
		d.cfg.Logger.Warn("commit a failed certificate order", "cert", o.Cert, "err", err)
	}
}

// record commits the intent of a new order, with a fresh certificate key.
func (d *duty) record(ctx context.Context, name string, hosts []string) (raftfsm.ACMEOrder, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return raftfsm.ACMEOrder{}, fmt.Errorf("certificate key: %w", err)
	}
	sealed, err := sealKey(d.cfg, raftfsm.IssuedKeyLabel(name), key)
	if err != nil {
		return raftfsm.ACMEOrder{}, err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return raftfsm.ACMEOrder{}, fmt.Errorf("order id: %w", err)
	}
	o := raftfsm.ACMEOrder{ID: hex.EncodeToString(id), Cert: name, Hosts: hosts, Key: sealed, Node: d.cfg.NodeID}
	if _, err := d.src.Apply(ctx, &raftfsm.RecordACMEOrder{At: d.cfg.Now(), Order: o}); err != nil {
		return raftfsm.ACMEOrder{}, err
	}
	return o, nil
}

// snapshot is what an order needs of the state, copied out of View.
type snapshot struct {
	config   raftfsm.ACMEConfig
	account  *raftfsm.ACMEAccount
	failures map[string]int
}

func takeSnapshot(s *raftfsm.State) snapshot {
	sn := snapshot{config: s.ACME.Config, failures: map[string]int{}}
	sn.config.Resolvers = slices.Clone(sn.config.Resolvers)
	if a := s.ACME.Account; a != nil {
		c := *a
		sn.account = &c
	}
	for name, c := range s.ACME.Certs {
		sn.failures[name] = c.Failures
	}
	return sn
}

func sealKey(cfg Config, label string, key *ecdsa.PrivateKey) (raftfsm.Sealed, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("encode key %s: %w", label, err)
	}
	return raftfsm.Seal(cfg.Sealer, label, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func openKey(cfg Config, label string, s raftfsm.Sealed) (crypto.Signer, error) {
	p, err := raftfsm.Open(cfg.Sealer, label, s)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, fmt.Errorf("key %s: not PEM", label)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", label, err)
	}
	return key, nil
}
