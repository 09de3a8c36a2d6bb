package cloudops

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestCloudflareRangesList(t *testing.T) {
	r, err := CloudflareRanges()
	if err != nil {
		t.Fatal(err)
	}
	if len(r) < 20 {
		t.Fatalf("%d ranges, want Cloudflare's 15 IPv4 and 7 IPv6 prefixes", len(r))
	}
	v4, v6 := 0, 0
	for _, s := range r {
		p := netip.MustParsePrefix(s)
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
		if p.Bits() < 8 {
			t.Errorf("range %s is implausibly wide", s)
		}
	}
	if v4 == 0 || v6 == 0 {
		t.Fatalf("%d IPv4 and %d IPv6 ranges, want both", v4, v6)
	}
	for _, want := range []string{"https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6", "Version: "} {
		if !strings.Contains(cloudflareIPs, want) {
			t.Errorf("cloudflare_ips.txt does not name %q", want)
		}
	}
}

func TestParseRangesRefusesGarbage(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "10.0.0.1/8\n", "not-a-cidr\n", "10.0.0.0\n"} {
		if _, err := parseRanges(text); err == nil {
			t.Errorf("parseRanges(%q) accepted it", text)
		}
	}
}

func TestWithWebSourcesLimitsOnlyHTTPAndHTTPS(t *testing.T) {
	base := ClusterFirewall("c1-fw", "dropmesh-c1", Ports{})
	before := rules(base.Inbound)
	cf, err := CloudflareRanges()
	if err != nil {
		t.Fatal(err)
	}
	s := WithWebSources(base, cf)
	if !slices.Equal(rules(base.Inbound), before) {
		t.Fatal("WithWebSources changed its input")
	}
	if len(s.Inbound) != len(base.Inbound) || !slices.Equal(rules(s.Outbound), rules(base.Outbound)) {
		t.Fatalf("rules added or removed: %v", rules(s.Inbound))
	}
	for i, r := range s.Inbound {
		if r.Ports == "80" || r.Ports == "443" {
			if !slices.Equal(r.Addresses, cf) || len(r.Tags) != 0 {
				t.Fatalf("port %s allows %v %v, want Cloudflare's ranges only", r.Ports, r.Addresses, r.Tags)
			}
			if slices.Contains(r.Addresses, "0.0.0.0/0") || slices.Contains(r.Addresses, "::/0") {
				t.Fatalf("port %s still open to everyone", r.Ports)
			}
			continue
		}
		if rules(s.Inbound)[i] != before[i] {
			t.Fatalf("rule %d changed: %s, was %s", i, rules(s.Inbound)[i], before[i])
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestWithWebSourcesOnTheFake: the restricted firewall goes through the real
// godo client to the fake DigitalOcean, which holds exactly those sources;
// turning the option off again opens 80 and 443 to everyone.
func TestWithWebSourcesOnTheFake(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	open := ClusterFirewall("c1-fw", "dropmesh-c1", Ports{})
	if _, err := e.do.EnsureFirewall(c, open); err != nil {
		t.Fatal(err)
	}
	cf, err := CloudflareRanges()
	if err != nil {
		t.Fatal(err)
	}
	fw, err := e.do.EnsureFirewall(c, WithWebSources(open, cf))
	if err != nil {
		t.Fatal(err)
	}
	web := 0
	for _, r := range e.fake.State().Firewalls[0].InboundRules {
		if r.PortRange != "80" && r.PortRange != "443" {
			continue
		}
		web++
		got := slices.Clone(r.Sources.Addresses)
		want := slices.Clone(cf)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("the fake's port %s allows %v, want Cloudflare's ranges", r.PortRange, r.Sources.Addresses)
		}
	}
	if web != 2 {
		t.Fatalf("%d web rules on the fake, want 80 and 443", web)
	}
	// Ensuring the same restricted spec again sends no update.
	puts := e.fake.Requests("PUT /v2/firewalls/{id}")
	if again, err := e.do.EnsureFirewall(c, WithWebSources(open, cf)); err != nil || again.ID != fw.ID {
		t.Fatalf("second ensure: %+v %v", again, err)
	}
	if n := e.fake.Requests("PUT /v2/firewalls/{id}"); n != puts {
		t.Fatalf("an unchanged restricted spec sent %d updates", n-puts)
	}
	if _, err := e.do.EnsureFirewall(c, open); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.fake.State().Firewalls[0].InboundRules {
		if (r.PortRange == "80" || r.PortRange == "443") && !slices.Contains(r.Sources.Addresses, "0.0.0.0/0") {
			t.Fatalf("port %s not reopened: %v", r.PortRange, r.Sources.Addresses)
		}
	}
}
