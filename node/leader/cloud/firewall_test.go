package cloud

import (
	"slices"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops"
)

// With cloudflareOnly the firewall's 80 and 443 admit Cloudflare's ranges
// only; every other rule is the same as without it.
func TestFirewallSpecCloudflareOnly(t *testing.T) {
	open, err := NewShape(nil, nil, cloudops.DefaultPorts(), false).FirewallSpec("c-firewall", "dropmesh-c")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := NewShape(nil, nil, cloudops.DefaultPorts(), true).FirewallSpec("c-firewall", "dropmesh-c")
	if err != nil {
		t.Fatal(err)
	}
	if len(open.Inbound) != len(cf.Inbound) {
		t.Fatalf("%d rules against %d", len(cf.Inbound), len(open.Inbound))
	}
	for i, r := range cf.Inbound {
		web := r.Protocol == "tcp" && (r.Ports == "80" || r.Ports == "443")
		everyone := slices.Contains(r.Addresses, "0.0.0.0/0")
		if web && (everyone || !slices.Contains(r.Addresses, "173.245.48.0/20")) {
			t.Fatalf("port %s with cloudflareOnly allows %v", r.Ports, r.Addresses)
		}
		if web && !slices.Contains(open.Inbound[i].Addresses, "0.0.0.0/0") {
			t.Fatalf("port %s without the option allows %v, want everyone", r.Ports, open.Inbound[i].Addresses)
		}
		if !web && !slices.Equal(r.Tags, open.Inbound[i].Tags) {
			t.Fatalf("rule %d changed: %+v", i, r)
		}
	}
	if err := cf.Validate(); err != nil {
		t.Fatal(err)
	}
}
