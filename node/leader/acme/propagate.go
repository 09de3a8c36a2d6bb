package acme

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// waitVisible waits until every resolver answers the TXT record name with
// value, so the CA is not told to look before the record is there (a
// failed validation counts against Let's Encrypt's limits).
func (d *duty) waitVisible(ctx context.Context, resolvers []string, zone, name, value string) error {
	servers := d.cfg.Resolvers
	if len(servers) == 0 {
		servers = resolvers
	}
	if len(servers) == 0 {
		ns, err := net.DefaultResolver.LookupNS(ctx, zone)
		if err != nil {
			return fmt.Errorf("name servers of %s: %w", zone, err)
		}
		for _, n := range ns {
			servers = append(servers, net.JoinHostPort(strings.TrimSuffix(n.Host, "."), "53"))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PropagationTimeout)
	defer cancel()
	c := &dns.Client{Timeout: 5 * time.Second}
	pending := slices.Clone(servers)
	for {
		var still []string
		for _, srv := range pending {
			if !hasTXT(ctx, c, srv, name, value) {
				still = append(still, srv)
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the challenge record %s is not visible at %s after %v", name, strings.Join(pending, ", "), d.cfg.PropagationTimeout)
		case <-time.After(d.cfg.PropagationInterval):
		}
	}
}

func hasTXT(ctx context.Context, c *dns.Client, server, name, value string) bool {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return false
	}
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true
		}
	}
	return false
}
