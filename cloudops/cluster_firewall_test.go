package cloudops

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/digitalocean/godo"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"golang.org/x/oauth2"
)

// rules renders rules one per line, for golden comparisons.
func rules(rs []FirewallRule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Protocol+" "+r.Ports+" "+strings.Join(r.Addresses, ",")+" "+strings.Join(r.Tags, ","))
	}
	return out
}

func TestClusterFirewallGolden(t *testing.T) {
	s := ClusterFirewall("c1-fw", "dropmesh-c1", Ports{})
	wantIn := []string{
		"tcp 80 0.0.0.0/0,::/0 ",
		"tcp 443 0.0.0.0/0,::/0 ",
		"tcp 9999  dropmesh-c1",
		"tcp 7946  dropmesh-c1",
		"udp 7946  dropmesh-c1",
		"tcp 7947  dropmesh-c1",
		"tcp 7948  dropmesh-c1",
	}
	wantOut := []string{
		"tcp all 0.0.0.0/0,::/0 ",
		"udp all 0.0.0.0/0,::/0 ",
		"icmp  0.0.0.0/0,::/0 ",
	}
	if got := rules(s.Inbound); !slices.Equal(got, wantIn) {
		t.Fatalf("inbound:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantIn, "\n"))
	}
	if got := rules(s.Outbound); !slices.Equal(got, wantOut) {
		t.Fatalf("outbound:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantOut, "\n"))
	}
	if s.Name != "c1-fw" || !slices.Equal(s.Tags, []string{"dropmesh-c1"}) {
		t.Fatalf("name/tags %q %v", s.Name, s.Tags)
	}
	for _, r := range s.Inbound {
		if r.Ports == "22" {
			t.Fatal("the cluster firewall opens SSH")
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterFirewallCustomPorts(t *testing.T) {
	s := ClusterFirewall("fw", "t", Ports{API: 19999, Gossip: 17946, Raft: 17947})
	got := rules(s.Inbound)
	for _, want := range []string{"tcp 19999  t", "tcp 17946  t", "udp 17946  t", "tcp 17947  t"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in %v", want, got)
		}
	}
}

func TestWithSSHAddsPort22WithoutTouchingTheInput(t *testing.T) {
	base := ClusterFirewall("fw", "t", Ports{})
	n := len(base.Inbound)
	ssh := WithSSH(base, []string{"198.51.100.7/32"})
	if len(base.Inbound) != n {
		t.Fatal("WithSSH changed its input")
	}
	if last := ssh.Inbound[len(ssh.Inbound)-1]; last.Protocol != "tcp" || last.Ports != "22" || !slices.Equal(last.Addresses, []string{"198.51.100.7/32"}) {
		t.Fatalf("ssh rule %+v", last)
	}
	open := WithSSH(base, nil)
	if last := open.Inbound[len(open.Inbound)-1]; !slices.Equal(last.Addresses, []string{"0.0.0.0/0", "::/0"}) {
		t.Fatalf("ssh from anywhere: %+v", last)
	}
	if err := ssh.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterFirewallWithBadTagIsRefusedByEnsure(t *testing.T) {
	e := newEnv(t, testOptions())
	s := ClusterFirewall("fw", "bad tag", Ports{})
	if err := s.Validate(); err == nil {
		t.Fatal("a bad cluster tag validated")
	}
	if _, err := e.do.EnsureFirewall(ctx(t), s); err == nil {
		t.Fatal("a bad cluster tag reached the API")
	}
	if n := e.fake.Requests("POST /v2/firewalls"); n != 0 {
		t.Fatalf("%d creates", n)
	}
}

// TestClusterFirewallAdmitsControlPortsByTagOnly ensures the cluster
// firewall through cloudops and reads it back with a plain godo client, as
// DigitalOcean would show it in its console or to doctl.
func TestClusterFirewallAdmitsControlPortsByTagOnly(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	spec := ClusterFirewall("c1-fw", "dropmesh-c1", Ports{})
	fw, err := e.do.EnsureFirewall(c, spec)
	if err != nil {
		t.Fatal(err)
	}
	hc := oauth2.NewClient(context.WithValue(c, oauth2.HTTPClient, http.DefaultClient), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fakeapi.DefaultToken}))
	g, err := godo.New(hc, godo.SetBaseURL(e.url))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := g.Firewalls.Get(c, fw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tags, []string{"dropmesh-c1"}) {
		t.Fatalf("applies to %v, want the cluster tag", got.Tags)
	}
	byPort := map[string]godo.InboundRule{}
	for _, r := range got.InboundRules {
		byPort[r.Protocol+"/"+r.PortRange] = r
	}
	for _, p := range []string{"tcp/9999", "tcp/7946", "udp/7946", "tcp/7947", "tcp/7948"} {
		r, ok := byPort[p]
		if !ok {
			t.Fatalf("no rule for %s in %+v", p, got.InboundRules)
		}
		if r.Sources == nil || !slices.Equal(r.Sources.Tags, []string{"dropmesh-c1"}) || len(r.Sources.Addresses) != 0 {
			t.Errorf("%s admits %+v, want only droplets tagged dropmesh-c1", p, r.Sources)
		}
	}
	for _, p := range []string{"tcp/80", "tcp/443"} {
		r := byPort[p]
		if r.Sources == nil || !slices.Equal(r.Sources.Addresses, []string{"0.0.0.0/0", "::/0"}) || len(r.Sources.Tags) != 0 {
			t.Errorf("%s admits %+v, want everyone", p, r.Sources)
		}
	}
	if len(got.InboundRules) != 7 {
		t.Errorf("%d inbound rules, want 7 (no SSH, nothing else)", len(got.InboundRules))
	}
	// DigitalOcean's spelling of the egress rules: "0" for all ports and
	// on icmp.
	for _, r := range got.OutboundRules {
		if r.PortRange != "0" {
			t.Errorf("outbound %s ports %q, want \"0\" as DigitalOcean answers", r.Protocol, r.PortRange)
		}
	}
	// Given answers in that shape, an unchanged firewall is never rewritten.
	for range 3 {
		if _, err := e.do.EnsureFirewall(c, spec); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Requests("PUT /v2/firewalls/{id}"); n != 0 {
		t.Fatalf("3 ensures of an unchanged firewall sent %d PUTs, want 0", n)
	}
	if n := e.fake.Requests("POST /v2/firewalls"); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
}
