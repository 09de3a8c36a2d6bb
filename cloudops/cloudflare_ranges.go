package cloudops

import (
	_ "embed"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// cloudflareIPs is the versioned list of Cloudflare's published ranges
// (cloudflare_ips.txt: its header names the source URLs and the version).
//
//go:embed cloudflare_ips.txt
var cloudflareIPs string

// CloudflareRanges returns Cloudflare's published edge address ranges
// (IPv4 then IPv6, as CIDR prefixes), from the list kept in the repository:
// the sources to allow on ports 80 and 443 when every public record is
// proxied through Cloudflare. The list is checked by a test, so an error
// means a broken build.
func CloudflareRanges() ([]string, error) {
	out, err := parseRanges(cloudflareIPs)
	if err != nil {
		return nil, fmt.Errorf("cloudops: cloudflare_ips.txt: %w", err)
	}
	return out, nil
}

// parseRanges reads one CIDR prefix a line; '#' starts a comment.
func parseRanges(text string) ([]string, error) {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil || p.Masked() != p {
			return nil, fmt.Errorf("line %d: %q is not a network prefix", i+1, line)
		}
		out = append(out, p.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ranges")
	}
	return out, nil
}

// WithWebSources returns a copy of spec whose inbound HTTP and HTTPS rules
// (tcp 80 and 443) allow only sources, such as CloudflareRanges() when the
// cluster's records are proxied: the droplets' edge is then reachable only
// through Cloudflare, not directly at their addresses. Other rules are kept
// as they are; the input is not changed.
func WithWebSources(spec FirewallSpec, sources []string) FirewallSpec {
	out := spec
	out.Tags = slices.Clone(spec.Tags)
	out.Outbound = slices.Clone(spec.Outbound)
	out.Inbound = make([]FirewallRule, 0, len(spec.Inbound))
	for _, r := range spec.Inbound {
		if r.Protocol == "tcp" && (r.Ports == "80" || r.Ports == "443") {
			r.Addresses, r.Tags = slices.Clone(sources), nil
		}
		out.Inbound = append(out.Inbound, r)
	}
	return out
}
