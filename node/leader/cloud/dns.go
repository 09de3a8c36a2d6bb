package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// RetryBackoff is how long a host whose records could not be changed
// waits before the next try. Every state change starts a cloud round, so
// without it a failing Cloudflare would be called many times a second;
// longer leaves a failed-over record pointing at a dead node for longer.
const RetryBackoff = 30 * time.Second

// Want is the A record set the leader wants for one host.
type Want struct {
	ips     []string
	proxied bool
	// why says, per address of a node that serves the host or could, why it
	// is in ips or left out: the reason the event of a change gives.
	why map[string]string
	// service is the first service publishing the host ("" for the UI host):
	// the service a refused change is reported against.
	service string
}

// Desired computes the A records of every host: a service's hosts point
// at the public IPs of the active nodes where it runs ready; a node that is
// rebooting or dead drops out while another node still serves the host (so
// clients fail over), and comes back once healthy; the UI host points at the
// leader.
func Desired(s *raftfsm.State, leaderID string) map[string]Want {
	out := map[string]Want{}
	for _, key := range raftfsm.SortedKeys(s.Services) {
		svc := s.Services[key]
		spec := svc.Spec
		if live, ok := svc.Revision(svc.LiveGeneration); ok {
			spec = live
		}
		if !spec.Routed() || len(spec.Hosts) == 0 {
			continue
		}
		var serving, all []string
		why := map[string]string{}
		down := map[string]string{} // address -> why its node cannot serve
		for _, in := range s.ServiceInstances(key) {
			n, ok := s.Nodes[in.Node]
			if !ok || n.PublicIP == "" {
				continue
			}
			if in.Phase != raftfsm.PhaseReady {
				if _, seen := why[n.PublicIP]; !seen {
					why[n.PublicIP] = fmt.Sprintf("%s has no ready instance of %s (%s)", n.ID, key, orDash(in.Phase))
				}
				continue
			}
			all = appendUnique(all, n.PublicIP)
			if n.Status == raftfsm.NodeActive {
				serving = appendUnique(serving, n.PublicIP)
				why[n.PublicIP] = fmt.Sprintf("%s serves %s", n.ID, key)
				continue
			}
			if _, seen := down[n.PublicIP]; !seen {
				down[n.PublicIP] = nodeDownReason(n)
			}
		}
		if len(serving) == 0 {
			serving = all // nobody else can take over: keep what there is
		}
		if len(serving) == 0 {
			continue
		}
		for ip, r := range down {
			if slices.Contains(serving, ip) {
				r += ", but no other node serves the host"
			}
			why[ip] = r
		}
		slices.Sort(serving)
		for _, h := range spec.Hosts {
			w := out[h]
			if w.service == "" {
				w.service = key
			}
			w.ips = appendUnique(w.ips, serving...)
			slices.Sort(w.ips)
			w.proxied = spec.IsProxied()
			if w.why == nil {
				w.why = map[string]string{}
			}
			for ip, r := range why {
				// A reason for an address in the set wins over one for
				// leaving it out (another service on the same host).
				if _, seen := w.why[ip]; !seen || slices.Contains(serving, ip) {
					w.why[ip] = r
				}
			}
			out[h] = w
		}
	}
	if s.Settings.UIHost != "" {
		if n, ok := s.Nodes[leaderID]; ok && n.PublicIP != "" {
			out[s.Settings.UIHost] = Want{ips: []string{n.PublicIP}, proxied: true,
				why: map[string]string{n.PublicIP: n.ID + " leads the cluster and serves its UI"}}
		}
	}
	return out
}

// nodeDownReason says why node n cannot serve: its status and the reason
// the state gives for it.
func nodeDownReason(n *raftfsm.Node) string {
	r := fmt.Sprintf("%s is %s", n.ID, n.Status)
	if n.StatusReason != "" {
		r += " (" + n.StatusReason + ")"
	}
	return r
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendUnique(list []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// DNS keeps the Cloudflare records equal to the state. It remembers, for
// one leadership, what saves requests: the hosts whose change failed (left
// alone for RetryBackoff) and the refusals already said.
type DNS struct {
	src     Source
	intents *Intents
	now     func() time.Time

	lastTry map[string]time.Time
	// foreignSaid is, per host refused for a record dropmesh did not make,
	// the refusal last recorded as an event.
	foreignSaid map[string]string
}

// NewDNS makes the DNS part of the cloud duty.
func NewDNS(src Source, intents *Intents, now func() time.Time) *DNS {
	return &DNS{src: src, intents: intents, now: now, lastTry: map[string]time.Time{}, foreignSaid: map[string]string{}}
}

// Round makes the Cloudflare records equal to Desired; leaderID is this
// node (the UI host points at it).
func (cd *DNS) Round(ctx context.Context, cf cloudops.DNS, leaderID string) error {
	var want map[string]Want
	cd.src.View(func(s *raftfsm.State) { want = Desired(s, leaderID) })
	return cd.Sync(ctx, cf, want)
}

// Sync makes the Cloudflare records of every host equal to want, through
// intents, and records every change as an event saying which addresses
// left or joined the host and why. A host whose change failed is left alone
// for RetryBackoff.
func (cd *DNS) Sync(ctx context.Context, cf cloudops.DNS, want map[string]Want) error {
	var (
		current  map[string]raftfsm.DNSHost
		nodeByIP map[string]string
	)
	cd.src.View(func(s *raftfsm.State) {
		current = map[string]raftfsm.DNSHost{}
		for h, d := range s.Cloud.DNS {
			current[h] = *d
		}
		nodeByIP = map[string]string{}
		for id, n := range s.Nodes {
			if n.PublicIP != "" {
				nodeByIP[n.PublicIP] = id
			}
		}
	})
	// backingOff reports whether host failed less than RetryBackoff ago
	// (lastTry holds the hosts whose last try has not succeeded).
	backingOff := func(host string) bool {
		last, failed := cd.lastTry[host]
		return failed && time.Since(last) < RetryBackoff
	}
	var errs []error
	for _, host := range raftfsm.SortedKeys(want) {
		w := want[host]
		cur, ok := current[host]
		if ok && slices.Equal(cur.IPs, w.ips) && cur.Proxied == w.proxied {
			delete(cd.lastTry, host)
			continue
		}
		if backingOff(host) {
			continue
		}
		cd.lastTry[host] = time.Now()
		err := cd.intents.Run(ctx, raftfsm.IntentEnsureDNS, host, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			zone, err := cf.FindZone(ctx, host)
			if err != nil {
				return raftfsm.CloudChanges{}, err
			}
			recs, err := cf.EnsureARecords(ctx, zone.ID, host, w.ips, w.proxied)
			if err != nil {
				return raftfsm.CloudChanges{}, err
			}
			ids := make([]string, 0, len(recs))
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			slices.Sort(ids)
			return raftfsm.CloudChanges{DNS: &raftfsm.DNSHost{Host: host, ZoneID: zone.ID, IPs: w.ips, Proxied: w.proxied, RecordIDs: ids}}, nil
		})
		if err == nil {
			delete(cd.lastTry, host)
			delete(cd.foreignSaid, host)
			err = cd.recordDNSChange(ctx, host, dnsChange(host, cur, ok, w, nodeByIP))
		} else if errors.Is(err, cloudops.ErrForeignRecord) {
			err = errors.Join(err, cd.recordForeign(ctx, host, w.service, err))
		}
		errs = append(errs, err)
	}
	for _, host := range raftfsm.SortedKeys(current) {
		if _, ok := want[host]; ok || backingOff(host) {
			continue
		}
		cur := current[host]
		cd.lastTry[host] = time.Now()
		err := cd.intents.Run(ctx, raftfsm.IntentDeleteDNS, host, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			zoneID := cur.ZoneID
			if zoneID == "" {
				zone, err := cf.FindZone(ctx, host)
				if errors.Is(err, cloudops.ErrNotFound) {
					return raftfsm.CloudChanges{DeleteDNS: host}, nil
				}
				if err != nil {
					return raftfsm.CloudChanges{}, err
				}
				zoneID = zone.ID
			}
			if err := cf.DeleteARecords(ctx, zoneID, host); err != nil {
				return raftfsm.CloudChanges{}, err
			}
			return raftfsm.CloudChanges{DeleteDNS: host}, nil
		})
		if err == nil {
			delete(cd.lastTry, host)
			err = cd.recordDNSChange(ctx, host, dnsChange(host, cur, true, Want{}, nodeByIP))
		}
		errs = append(errs, err)
	}
	for host := range cd.lastTry {
		if _, wanted := want[host]; !wanted {
			if _, known := current[host]; !known {
				delete(cd.lastTry, host) // gone from both: nothing left to retry
			}
		}
	}
	return errors.Join(errs...)
}

// recordForeign commits, once per refusal text, the warning that host is
// not published because a record dropmesh did not make holds it (the intent
// that failed says so too; the duty tries again after RetryBackoff, so an
// event per try would flood the log).
func (cd *DNS) recordForeign(ctx context.Context, host, service string, refusal error) error {
	msg := refusal.Error()
	if cd.foreignSaid[host] == msg {
		return nil
	}
	e := raftfsm.Event{Kind: raftfsm.EventDNS, Severity: raftfsm.SeverityWarn, Service: service,
		Message: fmt.Sprintf("%s: not published, its records were left untouched: %s", host, msg)}
	if err := cd.recordDNSChange(ctx, host, e); err != nil {
		return err
	}
	cd.foreignSaid[host] = msg
	return nil
}

// maxEventMessage is what an event message may hold (AppendEvent's limit).
const maxEventMessage = 2000

// recordDNSChange commits the event of host's change.
func (cd *DNS) recordDNSChange(ctx context.Context, host string, e raftfsm.Event) error {
	if len(e.Message) > maxEventMessage {
		e.Message = strings.ToValidUTF8(e.Message[:maxEventMessage-len("…")], "") + "…"
	}
	if _, err := cd.src.Apply(ctx, &raftfsm.AppendEvent{At: cd.now(), Event: e}); err != nil {
		return fmt.Errorf("record the dns change of %s: %w", host, err)
	}
	return nil
}

// dnsChange is the event of host's records going from cur (had: whether
// it had any) to w: each address taken out or added, with its reason. Taking
// an address out is a warning (clients fail over); adding one is news.
func dnsChange(host string, cur raftfsm.DNSHost, had bool, w Want, nodeByIP map[string]string) raftfsm.Event {
	var before []string
	if had {
		before = cur.IPs
	}
	reason := func(ip string, in bool) string {
		if r, ok := w.why[ip]; ok {
			return r
		}
		node, ok := nodeByIP[ip]
		switch {
		case in:
			return "wanted"
		case len(w.ips) == 0:
			return "nothing publishes the host any more"
		case ok:
			return node + " no longer serves the host"
		default:
			return "no node has this address any more"
		}
	}
	var parts, nodes []string
	sev := raftfsm.SeverityInfo
	for _, ip := range before {
		if !slices.Contains(w.ips, ip) {
			parts = append(parts, fmt.Sprintf("took %s out (%s)", ip, reason(ip, false)))
			nodes = appendUnique(nodes, nodeByIP[ip])
			sev = raftfsm.SeverityWarn
		}
	}
	for _, ip := range w.ips {
		if !slices.Contains(before, ip) {
			parts = append(parts, fmt.Sprintf("added %s (%s)", ip, reason(ip, true)))
			nodes = appendUnique(nodes, nodeByIP[ip])
		}
	}
	if had && len(w.ips) > 0 && cur.Proxied != w.proxied {
		parts = append(parts, fmt.Sprintf("proxied %t", w.proxied))
	}
	now := "no A record left"
	if len(w.ips) > 0 {
		now = "now " + strings.Join(w.ips, ", ")
	}
	e := raftfsm.Event{Kind: raftfsm.EventDNS, Severity: sev, Message: fmt.Sprintf("%s: %s; %s", host, strings.Join(parts, "; "), now)}
	if len(nodes) == 1 {
		e.Node = nodes[0]
	}
	return e
}
