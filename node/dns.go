package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// dnsWant is the A record set the leader wants for one host.
type dnsWant struct {
	ips     []string
	proxied bool
}

// desiredDNS computes the A records of every host: a service's hosts point
// at the public IPs of the active nodes where it runs ready; a node that is
// rebooting or dead drops out while another node still serves the host (so
// clients fail over), and comes back once healthy; the UI host points at the
// leader.
func desiredDNS(s *raftfsm.State, leaderID string) map[string]dnsWant {
	out := map[string]dnsWant{}
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
		for _, in := range s.ServiceInstances(key) {
			n, ok := s.Nodes[in.Node]
			if !ok || n.PublicIP == "" || in.Phase != raftfsm.PhaseReady {
				continue
			}
			all = appendUnique(all, n.PublicIP)
			if n.Status == raftfsm.NodeActive {
				serving = appendUnique(serving, n.PublicIP)
			}
		}
		if len(serving) == 0 {
			serving = all // nobody else can take over: keep what there is
		}
		if len(serving) == 0 {
			continue
		}
		slices.Sort(serving)
		for _, h := range spec.Hosts {
			w := out[h]
			w.ips = appendUnique(w.ips, serving...)
			slices.Sort(w.ips)
			w.proxied = spec.IsProxied()
			out[h] = w
		}
	}
	if s.Settings.UIHost != "" {
		if n, ok := s.Nodes[leaderID]; ok && n.PublicIP != "" {
			out[s.Settings.UIHost] = dnsWant{ips: []string{n.PublicIP}, proxied: true}
		}
	}
	return out
}

func appendUnique(list []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// dns makes the Cloudflare records equal to desiredDNS, through intents.
func (cd *cloudDuty) dns(ctx context.Context, c cloud) error {
	a := cd.a
	var (
		want    map[string]dnsWant
		current map[string]raftfsm.DNSHost
	)
	a.fsm.View(func(s *raftfsm.State) {
		want = desiredDNS(s, a.cfg.NodeID)
		current = map[string]raftfsm.DNSHost{}
		for h, d := range s.Cloud.DNS {
			current[h] = *d
		}
	})
	if cd.lastTry == nil {
		cd.lastTry = map[string]time.Time{}
	}
	var errs []error
	for _, host := range raftfsm.SortedKeys(want) {
		w := want[host]
		cur, ok := current[host]
		if ok && slices.Equal(cur.IPs, w.ips) && cur.Proxied == w.proxied {
			continue
		}
		if time.Since(cd.lastTry[host]) < 30*time.Second && cd.lastTry[host] != (time.Time{}) && !ok {
			continue // a recent failure: do not hammer the API
		}
		cd.lastTry[host] = time.Now()
		err := a.intent(ctx, raftfsm.IntentEnsureDNS, host, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			zone, err := c.cf.FindZone(ctx, host)
			if err != nil {
				return raftfsm.CloudChanges{}, err
			}
			recs, err := c.cf.EnsureARecords(ctx, zone.ID, host, w.ips, w.proxied)
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
		}
		errs = append(errs, err)
	}
	for _, host := range raftfsm.SortedKeys(current) {
		if _, ok := want[host]; ok {
			continue
		}
		cur := current[host]
		errs = append(errs, a.intent(ctx, raftfsm.IntentDeleteDNS, host, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			zoneID := cur.ZoneID
			if zoneID == "" {
				zone, err := c.cf.FindZone(ctx, host)
				if errors.Is(err, cloudops.ErrNotFound) {
					return raftfsm.CloudChanges{DeleteDNS: host}, nil
				}
				if err != nil {
					return raftfsm.CloudChanges{}, err
				}
				zoneID = zone.ID
			}
			if err := c.cf.DeleteARecords(ctx, zoneID, host); err != nil {
				return raftfsm.CloudChanges{}, err
			}
			return raftfsm.CloudChanges{DeleteDNS: host}, nil
		}))
	}
	return errors.Join(errs...)
}
