package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// edgeConfig computes this node's routes (converge.EdgeRoutes) and opens
// the zones' origin certificates (served when the edge listens on
// EdgeTLSPort).
func (a *Agent) edgeConfig() edge.Config {
	addrs := a.instances.addrSnapshot()
	ui := ""
	if a.uiHandler != nil {
		ui = net.JoinHostPort(a.cfg.AdvertiseIP, strconv.Itoa(a.cfg.UIPort))
	}
	var cfg edge.Config
	var origin []raftfsm.OriginCert
	var issued []raftfsm.IssuedCert
	a.fsm.View(func(s *raftfsm.State) {
		cfg, origin = converge.EdgeRoutes(s, a.cfg.NodeID, addrs, ui)
		issued = servableIssuedCerts(s)
	})
	cfg.Certs = a.originCerts.open(a, origin)
	issuedEdge := a.issuedCerts.edgeCerts(a, issued, cfg.Certs)
	cfg.Certs = append(cfg.Certs, issuedEdge...)
	keepRedirects(cfg.Routes, issuedEdge)
	return cfg
}

// originCertCache holds the opened origin certificates, so that each key is
// unsealed (and a failure logged) once per version, not on every edge update.
type originCertCache struct {
	mu     sync.Mutex
	opened map[string]openedCert // by zone
}

type openedCert struct {
	updated time.Time
	cert    edge.Cert
	ok      bool
}

// open returns the certificates of the state's origin certs whose key opens
// with this cluster's key; one that does not is left out (its hosts are
// served over plain HTTP only) and logged.
func (c *originCertCache) open(a *Agent, certs []raftfsm.OriginCert) []edge.Cert {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]openedCert, len(certs))
	var out []edge.Cert
	for _, oc := range certs {
		o, ok := c.opened[oc.Zone]
		if !ok || !o.updated.Equal(oc.UpdatedAt) {
			o = openedCert{updated: oc.UpdatedAt}
			key, err := raftfsm.Open(a.keys.Sealer, raftfsm.OriginKeyLabel(oc.Zone), oc.Key)
			if err != nil {
				a.logger.Error("origin certificate not served: its key does not open", "zone", oc.Zone, "err", err)
			} else {
				o.cert, o.ok = edge.Cert{Zone: oc.Zone, CertPEM: []byte(oc.CertPEM), KeyPEM: key}, true
			}
		}
		next[oc.Zone] = o
		if o.ok {
			out = append(out, o.cert)
		}
	}
	c.opened = next
	return out
}

// PutOriginCert stores the TLS certificate and key of a DNS zone (for
// example a Cloudflare origin certificate), the key sealed: every agent's
// edge then serves the zone's hosts on its TLS port with it. The pair must
// match and the certificate must cover the zone or its subdomains.
func (a *Agent) PutOriginCert(ctx context.Context, zone, certPEM, keyPEM string) error {
	if err := raftfsm.ValidateHostname(zone, false); err != nil {
		return fmt.Errorf("origin certificate zone: %w", err)
	}
	leaf, err := raftfsm.ParseCertChain(certPEM)
	if err != nil {
		return fmt.Errorf("origin certificate of %s: %w", zone, err)
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		return fmt.Errorf("%w: origin certificate of %s: certificate and key: %v", raftfsm.ErrInvalid, zone, err)
	}
	if !coversZone(leaf, zone) {
		return fmt.Errorf("%w: origin certificate of %s: it is for %v, not for %s or *.%s", raftfsm.ErrInvalid, zone, leaf.DNSNames, zone, zone)
	}
	key, err := raftfsm.Seal(a.keys.Sealer, raftfsm.OriginKeyLabel(zone), []byte(keyPEM))
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.PutOriginCert{At: a.now(), Cert: raftfsm.OriginCert{Zone: zone, CertPEM: certPEM, Key: key}})
	return err
}

// DeleteOriginCert removes a zone's origin certificate: its hosts are then
// served over plain HTTP only.
func (a *Agent) DeleteOriginCert(ctx context.Context, zone string) error {
	_, err := a.apply(ctx, &raftfsm.DeleteOriginCert{At: a.now(), Zone: zone})
	return err
}

// coversZone reports whether a certificate is valid for a zone's apex or
// for the names under it (a wildcard).
func coversZone(leaf *x509.Certificate, zone string) bool {
	return leaf.VerifyHostname(zone) == nil || leaf.VerifyHostname("dropmesh-check."+zone) == nil
}

// drainEdge waits, at most DrainDelay, until no request that started under
// an earlier edge config is still running.
func (a *Agent) drainEdge(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, a.cfg.DrainDelay)
	defer cancel()
	if d, ok := a.edge.(interface{ Drain(context.Context) error }); ok {
		if err := d.Drain(dctx); err == nil {
			return
		}
	}
	<-dctx.Done()
}

// applyEdge pushes the current routes to the edge when they changed. A
// failure keeps the previous routes serving and is recorded as an event.
func (a *Agent) applyEdge(ctx context.Context) error {
	if a.edge == nil {
		return nil
	}
	a.edgeMu.Lock()
	defer a.edgeMu.Unlock()
	cfg := a.edgeConfig()
	if a.edgeApplied && reflect.DeepEqual(cfg, a.edgeLast) {
		return nil
	}
	if err := a.edge.Apply(ctx, cfg); err != nil {
		if ctx.Err() != nil && !errors.Is(err, edge.ErrRejected) {
			// The caller gave up (a stopped worker, shutdown): nothing
			// changed, and the next applyEdge pushes these routes.
			return fmt.Errorf("edge: %w", err)
		}
		a.logger.Error("edge config refused; the previous one keeps serving", "err", err)
		_ = a.report(ctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: raftfsm.EventEdge, Severity: raftfsm.SeverityError,
			Node: a.cfg.NodeID, Message: fmt.Sprintf("edge on %s refused the new routes: %v", a.cfg.NodeID, err)}})
		return err
	}
	a.edgeLast, a.edgeApplied = cfg, true
	return nil
}
