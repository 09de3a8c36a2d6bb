package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// hostCheck is what checkDeployHosts needs to know of one deploy.
type hostCheck struct {
	hosts []string
	// routed: the service publishes its hosts in DNS (spec.Routed()).
	routed bool
	// admin: the caller has the admin role.
	admin bool
	// granted are hosts the service already has: an admin put them there,
	// so a redeploy by anyone keeps them.
	granted []string
	// domain is the cluster's zone (Settings.Domain), the apex when
	// Cloudflare cannot be asked.
	domain string
}

// checkDeployHosts refuses, before anything is committed, a deploy whose
// hosts the caller may not publish or whose DNS records dropmesh may not
// touch: a wildcard or a zone's apex without the admin role (ErrForbidden),
// a host within none of the Cloudflare zones the cluster's token reaches
// (ErrInvalid), a host with an A record dropmesh did not make (ErrConflict
// naming the record). dns is nil without a Cloudflare token: then only the
// role rules are checked, with domain as the apex. When Cloudflare cannot
// be asked the deploy goes on, logged: the leader's DNS duty makes the same
// ownership check before every change and refuses foreign records there.
func checkDeployHosts(ctx context.Context, dns cloudops.DNS, log *slog.Logger, hc hostCheck) error {
	for _, h := range hc.hosts {
		may := hc.admin || slices.Contains(hc.granted, h)
		if !may && strings.HasPrefix(h, "*.") {
			return fmt.Errorf("%w: host %s: wildcard hosts are admin-only (deploy with an admin token or the cluster API key)", control.ErrForbidden, h)
		}
		apex := func(zone string) error {
			if !may && strings.EqualFold(h, zone) {
				return fmt.Errorf("%w: host %s is the apex of the zone %s, which is admin-only (deploy with an admin token or the cluster API key)",
					control.ErrForbidden, h, zone)
			}
			return nil
		}
		if dns == nil || !hc.routed {
			if err := apex(hc.domain); err != nil {
				return err
			}
			continue
		}
		zone, err := dns.FindZone(ctx, h)
		if errors.Is(err, cloudops.ErrNotFound) {
			return fmt.Errorf("%w: host %s is not within any Cloudflare zone of the cluster", raftfsm.ErrInvalid, h)
		}
		if err != nil {
			log.WarnContext(ctx, "deploy: the host's zone could not be checked; the DNS duty checks ownership before it changes a record", "host", h, "err", err)
			if err := apex(hc.domain); err != nil {
				return err
			}
			continue
		}
		if err := apex(zone.Name); err != nil {
			return err
		}
		recs, err := dns.ListARecords(ctx, zone.ID, h)
		if err != nil {
			log.WarnContext(ctx, "deploy: the host's records could not be checked; the DNS duty checks ownership before it changes a record", "host", h, "err", err)
			continue
		}
		if err := cloudops.CheckOwned(h, recs); err != nil {
			return fmt.Errorf("%w: host %s: %w", raftfsm.ErrConflict, h, err)
		}
	}
	return nil
}

// checkHosts runs checkDeployHosts for cmd with the cluster's Cloudflare
// client, if it has a token.
func (a *Agent) checkHosts(ctx context.Context, cmd *raftfsm.DeployService, role raftfsm.Role) error {
	hc := hostCheck{hosts: cmd.Spec.Hosts, routed: cmd.Spec.Routed(), admin: role.Allows(raftfsm.RoleAdmin)}
	a.fsm.View(func(s *raftfsm.State) {
		hc.domain = s.Settings.Domain
		key := raftfsm.ServiceKey(cmd.WorkspaceID, cmd.Spec.Project, cmd.Spec.Env, cmd.Spec.Service)
		if prev, ok := s.Services[key]; ok {
			hc.granted = slices.Clone(prev.Spec.Hosts)
		}
	})
	if len(hc.hosts) == 0 {
		return nil
	}
	var dns cloudops.DNS
	c, err := a.cloudClients()
	switch {
	case err != nil:
		a.logger.WarnContext(ctx, "deploy: no Cloudflare client to check the hosts with", "err", err)
	case c.cf != nil:
		dns = c.cf
	}
	return checkDeployHosts(ctx, dns, a.logger, hc)
}
