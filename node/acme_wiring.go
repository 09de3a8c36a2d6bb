package node

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/node/leader/acme"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// runACME is the leader's automatic-HTTPS duty (node/leader/acme), with
// the cluster's Cloudflare client for the DNS-01 records.
func (a *Agent) runACME(ctx context.Context) {
	acme.Run(ctx, a, acme.Config{NodeID: a.cfg.NodeID, Logger: a.logger.With("duty", "acme"), Sealer: a.keys.Sealer, Now: a.now,
		DNS: func() (cloudops.ChallengeDNS, error) {
			c, err := a.cloudClients()
			if err != nil || c.cf == nil {
				return nil, err
			}
			return c.cf, nil
		}})
}

// servableIssuedCerts copies the issued certificates the edge can serve,
// sorted by name (service certificates before zone wildcards).
func servableIssuedCerts(s *raftfsm.State) []raftfsm.IssuedCert {
	var out []raftfsm.IssuedCert
	for _, name := range raftfsm.SortedKeys(s.ACME.Certs) {
		if c := s.ACME.Certs[name]; c.Servable() {
			cc := *c
			cc.Hosts = slices.Clone(c.Hosts)
			out = append(out, cc)
		}
	}
	return out
}

// issuedCertCache holds the opened issued certificates, so each key is
// unsealed once per issuance, not on every edge update.
type issuedCertCache struct {
	mu     sync.Mutex
	opened map[string]issuedOpened // by certificate name
}

type issuedOpened struct {
	issued time.Time
	key    []byte
	ok     bool
}

// edgeCerts turns issued certificates into the edge's per-name
// certificates: one entry per host (a wildcard's under its zone). A host
// that an uploaded origin certificate covers keeps the uploaded one, and
// the first certificate to claim a name keeps it.
func (c *issuedCertCache) edgeCerts(a *Agent, issued []raftfsm.IssuedCert, uploaded []edge.Cert) []edge.Cert {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]issuedOpened, len(issued))
	claimed := map[string]bool{}
	for _, u := range uploaded {
		claimed[u.Zone] = true
	}
	var out []edge.Cert
	for _, ic := range issued {
		o, ok := c.opened[ic.Name]
		if !ok || !o.issued.Equal(ic.IssuedAt) {
			o = issuedOpened{issued: ic.IssuedAt}
			pemKey, err := raftfsm.Open(a.keys.Sealer, raftfsm.IssuedKeyLabel(ic.Name), ic.Key)
			if err != nil {
				a.logger.Error("issued certificate not served: its key does not open", "cert", ic.Name, "err", err)
			} else {
				o.key, o.ok = pemKey, true
			}
		}
		next[ic.Name] = o
		if !o.ok {
			continue
		}
		for _, h := range ic.Hosts {
			name := strings.TrimPrefix(h, "*.")
			if claimed[name] || coveredBy(name, uploaded) {
				continue
			}
			claimed[name] = true
			out = append(out, edge.Cert{Zone: name, CertPEM: []byte(ic.CertPEM), KeyPEM: o.key})
		}
	}
	c.opened = next
	return out
}

// coveredBy reports whether an uploaded certificate's zone covers name.
func coveredBy(name string, uploaded []edge.Cert) bool {
	for _, u := range uploaded {
		if name == u.Zone || strings.HasSuffix(name, "."+u.Zone) {
			return true
		}
	}
	return false
}

// keepRedirects leaves the 80 -> 443 redirect on the routes whose host an
// issued certificate serves: a host under an uploaded origin certificate
// keeps answering plain HTTP, as it did before automatic HTTPS (Cloudflare
// in Flexible mode reaches the origin over plain HTTP).
func keepRedirects(routes []edge.Route, issued []edge.Cert) {
	names := make(map[string]bool, len(issued))
	for _, c := range issued {
		names[c.Zone] = true
	}
	for i := range routes {
		h := strings.TrimPrefix(routes[i].Host, "*.")
		covered := names[h]
		if _, parent, ok := strings.Cut(h, "."); ok && !covered {
			covered = names[parent] && issuedWildcard(issued, parent)
		}
		routes[i].RedirectHTTPS = routes[i].RedirectHTTPS && covered
	}
}

// issuedWildcard reports whether the issued certificate for zone is a
// wildcard (it then covers the zone's first-level names).
func issuedWildcard(issued []edge.Cert, zone string) bool {
	for _, c := range issued {
		if c.Zone == zone {
			leaf, err := raftfsm.ParseCertChain(string(c.CertPEM))
			return err == nil && slices.Contains(leaf.DNSNames, "*."+zone)
		}
	}
	return false
}
