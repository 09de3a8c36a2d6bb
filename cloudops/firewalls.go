package cloudops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/digitalocean/godo"
)

// FirewallRule allows one protocol and port range from (inbound) or to
// (outbound) a set of addresses and droplet tags.
type FirewallRule struct {
	Protocol  string   // tcp, udp or icmp
	Ports     string   // "80", "8000-8100" or "all" ("0" as DigitalOcean answers it); empty for icmp
	Addresses []string // IPs or CIDR prefixes
	Tags      []string // droplet tags
}

// FirewallSpec is the whole wanted state of a cloud firewall.
type FirewallSpec struct {
	Name     string
	Tags     []string // the droplets it applies to
	Inbound  []FirewallRule
	Outbound []FirewallRule
}

// Firewall is a cloud firewall as DigitalOcean holds it.
type Firewall struct {
	ID        string
	Name      string
	Status    string
	Tags      []string
	Inbound   []FirewallRule
	Outbound  []FirewallRule
	CreatedAt time.Time
}

// Firewalls is what the leader does with cloud firewalls.
type Firewalls interface {
	// EnsureFirewall creates the firewall of that name or updates it to
	// exactly spec.
	EnsureFirewall(ctx context.Context, spec FirewallSpec) (Firewall, error)
	// GetFirewallByName returns the firewall called name; ErrNotFound.
	GetFirewallByName(ctx context.Context, name string) (Firewall, error)
	// DeleteFirewall deletes a firewall; one already gone is not an error.
	DeleteFirewall(ctx context.Context, id string) error
}

// Validate checks the spec without calling anything.
func (s FirewallSpec) Validate() error {
	if !resNameRe.MatchString(s.Name) {
		return invalid("firewall name %q: use letters, digits, '.', '_' and '-'", s.Name)
	}
	for _, t := range s.Tags {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	if len(s.Outbound) == 0 {
		return invalid("firewall %q has no outbound rules: droplets would lose egress", s.Name)
	}
	for dir, rules := range map[string][]FirewallRule{"inbound": s.Inbound, "outbound": s.Outbound} {
		for i, r := range rules {
			if err := r.validate(); err != nil {
				return fmt.Errorf("%s rule %d: %w", dir, i, err)
			}
		}
	}
	return nil
}

func (r FirewallRule) validate() error {
	switch r.Protocol {
	case "tcp", "udp":
		if err := checkPorts(r.Ports); err != nil {
			return err
		}
	case "icmp":
		if r.Ports != "" {
			return invalid("icmp takes no ports, got %q", r.Ports)
		}
	default:
		return invalid("protocol %q: use tcp, udp or icmp", r.Protocol)
	}
	if len(r.Addresses) == 0 && len(r.Tags) == 0 {
		return invalid("%s %s rule has no addresses and no tags", r.Protocol, r.Ports)
	}
	for _, a := range r.Addresses {
		if err := checkAddress(a); err != nil {
			return err
		}
	}
	for _, t := range r.Tags {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	return nil
}

// canonical returns rules in one order with sorted fields and ports
// spelled one way, so a wanted rule set and DigitalOcean's answer compare
// equal when they mean the same: DigitalOcean answers "0" for all ports of
// tcp and udp (asked for as "all" or "0") and always "0" on icmp, which
// takes no ports.
func canonical(rules []FirewallRule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		ports := r.Ports
		switch {
		case r.Protocol == "icmp":
			ports = ""
		case ports == "0" || ports == "":
			ports = "all"
		}
		a, t := slices.Clone(r.Addresses), slices.Clone(r.Tags)
		slices.Sort(a)
		slices.Sort(t)
		out = append(out, r.Protocol+"|"+ports+"|"+strings.Join(a, ",")+"|"+strings.Join(t, ","))
	}
	slices.Sort(out)
	return out
}

// matches reports whether fw already is spec.
func (s FirewallSpec) matches(fw Firewall) bool {
	ts, ft := slices.Clone(s.Tags), slices.Clone(fw.Tags)
	slices.Sort(ts)
	slices.Sort(ft)
	return fw.Name == s.Name && slices.Equal(ts, ft) &&
		slices.Equal(canonical(s.Inbound), canonical(fw.Inbound)) &&
		slices.Equal(canonical(s.Outbound), canonical(fw.Outbound))
}

func (s FirewallSpec) request() *godo.FirewallRequest {
	req := &godo.FirewallRequest{Name: s.Name, Tags: slices.Clone(s.Tags)}
	for _, r := range s.Inbound {
		req.InboundRules = append(req.InboundRules, godo.InboundRule{Protocol: r.Protocol, PortRange: r.Ports,
			Sources: &godo.Sources{Addresses: slices.Clone(r.Addresses), Tags: slices.Clone(r.Tags)}})
	}
	for _, r := range s.Outbound {
		req.OutboundRules = append(req.OutboundRules, godo.OutboundRule{Protocol: r.Protocol, PortRange: r.Ports,
			Destinations: &godo.Destinations{Addresses: slices.Clone(r.Addresses), Tags: slices.Clone(r.Tags)}})
	}
	return req
}

// specPorts turns DigitalOcean's spelling of a rule's ports into a
// FirewallRule's: "all" for every port, nothing for icmp. A Firewall read
// back so validates as a FirewallSpec again.
func specPorts(proto, ports string) string {
	switch {
	case proto == "icmp":
		return ""
	case ports == "0" || ports == "":
		return "all"
	}
	return ports
}

func firewallFrom(f *godo.Firewall) Firewall {
	out := Firewall{ID: f.ID, Name: f.Name, Status: f.Status, Tags: slices.Clone(f.Tags)}
	out.CreatedAt, _ = time.Parse(time.RFC3339, f.Created)
	for _, r := range f.InboundRules {
		fr := FirewallRule{Protocol: r.Protocol, Ports: specPorts(r.Protocol, r.PortRange)}
		if r.Sources != nil {
			fr.Addresses, fr.Tags = slices.Clone(r.Sources.Addresses), slices.Clone(r.Sources.Tags)
		}
		out.Inbound = append(out.Inbound, fr)
	}
	for _, r := range f.OutboundRules {
		fr := FirewallRule{Protocol: r.Protocol, Ports: specPorts(r.Protocol, r.PortRange)}
		if r.Destinations != nil {
			fr.Addresses, fr.Tags = slices.Clone(r.Destinations.Addresses), slices.Clone(r.Destinations.Tags)
		}
		out.Outbound = append(out.Outbound, fr)
	}
	return out
}

// EnsureFirewall implements Firewalls. It changes nothing when the firewall
// already matches, and replaces all its rules (PUT) when it does not.
func (do *DigitalOcean) EnsureFirewall(ctx context.Context, spec FirewallSpec) (Firewall, error) {
	op := fmt.Sprintf("ensure firewall %q", spec.Name)
	if do.err != nil {
		return Firewall{}, fmt.Errorf("%s: %w", op, do.err)
	}
	if err := spec.Validate(); err != nil {
		return Firewall{}, fmt.Errorf("%s: %w", op, err)
	}
	var out Firewall
	err := again(ctx, do.retry, do.log, op, func() error {
		fw, found, err := do.findFirewall(ctx, spec.Name)
		if err != nil {
			return err
		}
		switch {
		case !found:
			g, _, err := do.c.Firewalls.Create(ctx, spec.request())
			if err != nil {
				return err
			}
			out = firewallFrom(g)
			do.log.Info("firewall created", "firewall", spec.Name, "id", out.ID)
		case spec.matches(fw):
			out = fw
		default:
			g, _, err := do.c.Firewalls.Update(ctx, fw.ID, spec.request())
			if err != nil {
				return err
			}
			out = firewallFrom(g)
			do.log.Info("firewall updated", "firewall", spec.Name, "id", out.ID)
		}
		return nil
	})
	if err != nil {
		return Firewall{}, opError(op, err)
	}
	return out, nil
}

// GetFirewallByName implements Firewalls.
func (do *DigitalOcean) GetFirewallByName(ctx context.Context, name string) (Firewall, error) {
	op := fmt.Sprintf("get firewall %q", name)
	if do.err != nil {
		return Firewall{}, fmt.Errorf("%s: %w", op, do.err)
	}
	fw, found, err := do.findFirewall(ctx, name)
	if err != nil {
		return Firewall{}, opError(op, err)
	}
	if !found {
		return Firewall{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return fw, nil
}

func (do *DigitalOcean) findFirewall(ctx context.Context, name string) (Firewall, bool, error) {
	fws, err := listAll(ctx, do.cfg.PageSize, do.c.Firewalls.List)
	if err != nil {
		return Firewall{}, false, err
	}
	for i := range fws {
		if fws[i].Name == name {
			return firewallFrom(&fws[i]), true, nil
		}
	}
	return Firewall{}, false, nil
}

// DeleteFirewall implements Firewalls.
func (do *DigitalOcean) DeleteFirewall(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete firewall %s", id)
	if do.err != nil {
		return fmt.Errorf("%s: %w", op, do.err)
	}
	if !uuidRe.MatchString(id) {
		return fmt.Errorf("%s: %w", op, invalid("%q is not a firewall id", id))
	}
	_, err := do.c.Firewalls.Delete(ctx, id)
	if err = ignoreNotFound(err); err != nil {
		return opError(op, err)
	}
	do.log.Info("firewall deleted", "id", id)
	return nil
}
