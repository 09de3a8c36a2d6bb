package cloudops

import (
	"slices"
	"strings"
	"testing"
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
	s := ClusterFirewall("c1-fw", "dropmesh-c1", "10.110.0.0/20", Ports{})
	wantIn := []string{
		"tcp 80 0.0.0.0/0,::/0 ",
		"tcp 443 0.0.0.0/0,::/0 ",
		"tcp 9999 10.110.0.0/20 ",
		"tcp 7946 10.110.0.0/20 ",
		"udp 7946 10.110.0.0/20 ",
		"tcp 7947 10.110.0.0/20 ",
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
	s := ClusterFirewall("fw", "t", "10.0.0.0/16", Ports{API: 19999, Gossip: 17946, Raft: 17947})
	got := rules(s.Inbound)
	for _, want := range []string{"tcp 19999 10.0.0.0/16 ", "tcp 17946 10.0.0.0/16 ", "udp 17946 10.0.0.0/16 ", "tcp 17947 10.0.0.0/16 "} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in %v", want, got)
		}
	}
}

func TestWithSSHAddsPort22WithoutTouchingTheInput(t *testing.T) {
	base := ClusterFirewall("fw", "t", "10.0.0.0/16", Ports{})
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

func TestClusterFirewallWithBadCIDRIsRefusedByEnsure(t *testing.T) {
	s := ClusterFirewall("fw", "t", "not-a-cidr", Ports{})
	if err := s.Validate(); err == nil {
		t.Fatal("a bad VPC CIDR validated")
	}
}
