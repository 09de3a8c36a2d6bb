package acme

import (
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Desired returns the certificates the state's services ask for, by name,
// each with its sorted hosts: one per service for all its hosts, or, for
// a service whose spec asks for a wildcard, its zones' "*.zone" and "zone"
// (the zone of a host is the host without its first label); and the UI
// host's. It does not depend on whether ACME is enabled: a disabled CA
// keeps the certificates already issued until their hosts go.
func Desired(s *raftfsm.State) map[string][]string {
	out := map[string][]string{}
	for _, key := range raftfsm.SortedKeys(s.Services) {
		spec := s.Services[key].Spec
		if !spec.AutoTLS() {
			continue
		}
		if !spec.WildcardTLS() {
			out[raftfsm.CertNameForService(key)] = sortedUnique(spec.Hosts)
			continue
		}
		for _, h := range spec.Hosts {
			zone := strings.TrimPrefix(h, "*.")
			if _, rest, ok := strings.Cut(zone, "."); ok && strings.Contains(rest, ".") && !strings.HasPrefix(h, "*.") {
				zone = rest
			}
			out[raftfsm.CertNameForZone(zone)] = []string{"*." + zone, zone}
		}
	}
	// The web UI's host, when the cluster has one, gets its own certificate
	// (the edges serve it for the leader's UI).
	if h := s.Settings.UIHost; h != "" {
		out[raftfsm.CertNameForUI(h)] = []string{h}
	}
	return out
}

func sortedUnique(hs []string) []string {
	out := slices.Clone(hs)
	slices.Sort(out)
	return slices.Compact(out)
}

// renewAt is when a certificate is renewed: RenewBefore ahead of its
// expiry, and up to a tenth of that earlier, spread by a hash of its name
// and expiry so that certificates issued together do not renew together
// (stable across leaders and restarts, no randomness in the plan).
func renewAt(c *raftfsm.IssuedCert, window time.Duration) time.Time {
	h := fnv.New64a()
	_, _ = h.Write([]byte(c.Name + c.NotAfter.String()))
	spread := time.Duration(float64(window/10) * float64(h.Sum64()%1000) / 1000)
	return c.NotAfter.Add(-window - spread)
}

// work is what one step of the duty does.
type work struct {
	// deletes are certificates no service asks for any more.
	deletes []string
	// resume is an open order to finish (left by a former leader, or by
	// this one before a restart of the duty).
	resume *raftfsm.ACMEOrder
	// abandon are open orders whose hosts are no longer asked for.
	abandon []raftfsm.ACMEOrder
	// issue is a certificate to order now, with its hosts.
	issue      string
	issueHosts []string
	// next is when the plan changes without a change of the state: the
	// next renewal or retry time (zero: none).
	next time.Time
}

// planWork decides the step from the state at now.
func planWork(s *raftfsm.State, now time.Time) work {
	var w work
	want := Desired(s)
	for _, name := range slices.Sorted(maps.Keys(s.ACME.Certs)) {
		if _, ok := want[name]; !ok {
			w.deletes = append(w.deletes, name)
		}
	}
	cfg := s.ACME.Config
	if !cfg.Enabled || cfg.Directory == "" {
		return w
	}
	var open []*raftfsm.ACMEOrder
	for _, id := range slices.Sorted(maps.Keys(s.ACME.Orders)) {
		if o := s.ACME.Orders[id]; o.Status == raftfsm.OrderOpen {
			open = append(open, o)
		}
	}
	slices.SortStableFunc(open, func(a, b *raftfsm.ACMEOrder) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, o := range open {
		hosts, ok := want[o.Cert]
		if !ok {
			continue // its certificate is deleted in this step, which closes the order
		}
		if !slices.Equal(sortedUnique(o.Hosts), hosts) {
			w.abandon = append(w.abandon, *o)
			continue
		}
		if w.resume == nil {
			c := *o
			w.resume = &c
		}
	}
	if w.resume != nil {
		return w
	}
	window := cfg.RenewWindow()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		hosts := want[name]
		c := s.ACME.Certs[name]
		due := now
		if c != nil && c.Servable() && slices.Equal(sortedUnique(c.Hosts), hosts) && (c.Directory == "" || c.Directory == cfg.Directory) {
			due = renewAt(c, window)
		}
		if c != nil && c.NextAttempt.After(due) {
			due = c.NextAttempt
		}
		if !due.After(now) {
			if w.issue == "" {
				w.issue, w.issueHosts = name, hosts
			}
			continue
		}
		if w.next.IsZero() || due.Before(w.next) {
			w.next = due
		}
	}
	return w
}

// backoff is the wait before the attempt after failure number n (1, 2, ...).
func backoff(cfg Config, n int) time.Duration {
	d := cfg.Backoff
	for i := 1; i < n && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, cfg.MaxBackoff)
	return d + time.Duration(cfg.Jitter()*float64(d)/4)
}
