package node

import (
	"context"
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
