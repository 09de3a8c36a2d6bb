package cloudops

import (
	"errors"
	"slices"
	"testing"

	"github.com/digitalocean/godo"
)

func TestEnsureFirewallCreatesThenReplaces(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	first := ClusterFirewall("c1-fw", "c1", Ports{})
	fw, err := e.do.EnsureFirewall(c, first)
	if err != nil {
		t.Fatal(err)
	}
	if fw.ID == "" || fw.Name != "c1-fw" || !slices.Equal(fw.Tags, []string{"c1"}) {
		t.Fatalf("created %+v", fw)
	}
	// Ensuring the same spec again changes nothing.
	again, err := e.do.EnsureFirewall(c, first)
	if err != nil || again.ID != fw.ID {
		t.Fatalf("second ensure: %+v %v", again, err)
	}
	if n := e.fake.Requests("PUT /v2/firewalls/{id}"); n != 0 {
		t.Fatalf("unchanged spec sent %d updates", n)
	}
	second := FirewallSpec{Name: "c1-fw", Tags: []string{"c1", "extra"},
		Inbound:  []FirewallRule{{Protocol: "tcp", Ports: "8080", Addresses: []string{"192.0.2.0/24"}}},
		Outbound: []FirewallRule{{Protocol: "tcp", Ports: "443", Addresses: []string{"0.0.0.0/0"}}}}
	up, err := e.do.EnsureFirewall(c, second)
	if err != nil || up.ID != fw.ID {
		t.Fatalf("update: %+v %v", up, err)
	}
	st := e.fake.State()
	if len(st.Firewalls) != 1 {
		t.Fatalf("fake holds %d firewalls", len(st.Firewalls))
	}
	got := st.Firewalls[0]
	wantIn := []godo.InboundRule{{Protocol: "tcp", PortRange: "8080", Sources: &godo.Sources{Addresses: []string{"192.0.2.0/24"}}}}
	wantOut := []godo.OutboundRule{{Protocol: "tcp", PortRange: "443", Destinations: &godo.Destinations{Addresses: []string{"0.0.0.0/0"}}}}
	if !slices.EqualFunc(got.InboundRules, wantIn, func(a, b godo.InboundRule) bool {
		return a.Protocol == b.Protocol && a.PortRange == b.PortRange && slices.Equal(a.Sources.Addresses, b.Sources.Addresses) && len(a.Sources.Tags) == 0
	}) {
		t.Fatalf("fake inbound rules %+v, want exactly %+v", got.InboundRules, wantIn)
	}
	if !slices.EqualFunc(got.OutboundRules, wantOut, func(a, b godo.OutboundRule) bool {
		return a.Protocol == b.Protocol && a.PortRange == b.PortRange && slices.Equal(a.Destinations.Addresses, b.Destinations.Addresses)
	}) {
		t.Fatalf("fake outbound rules %+v, want exactly %+v", got.OutboundRules, wantOut)
	}
	if !slices.Equal(got.Tags, []string{"c1", "extra"}) {
		t.Fatalf("fake tags %v", got.Tags)
	}
	byName, err := e.do.GetFirewallByName(c, "c1-fw")
	if err != nil || byName.ID != fw.ID || len(byName.Inbound) != 1 {
		t.Fatalf("by name: %+v %v", byName, err)
	}
	if err := e.do.DeleteFirewall(c, fw.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.do.DeleteFirewall(c, fw.ID); err != nil {
		t.Fatalf("deleting a gone firewall: %v", err)
	}
	if _, err := e.do.GetFirewallByName(c, "c1-fw"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("by name after delete: %v", err)
	}
}

func TestEnsureFirewallRefusesBadSpecs(t *testing.T) {
	e := newEnv(t, testOptions())
	base := ClusterFirewall("c1-fw", "c1", Ports{})
	bad := map[string]func(*FirewallSpec){
		"name":        func(s *FirewallSpec) { s.Name = "fw;rm" },
		"no outbound": func(s *FirewallSpec) { s.Outbound = nil },
		"protocol":    func(s *FirewallSpec) { s.Inbound[0].Protocol = "sctp" },
		"ports":       func(s *FirewallSpec) { s.Inbound[0].Ports = "70000" },
		"range":       func(s *FirewallSpec) { s.Inbound[0].Ports = "90-80" },
		"icmp ports":  func(s *FirewallSpec) { s.Outbound[2].Ports = "1" },
		"no sources":  func(s *FirewallSpec) { s.Inbound[0].Addresses = nil },
		"address":     func(s *FirewallSpec) { s.Inbound[2].Addresses = []string{"10.0.0.0/33"} },
		"tag":         func(s *FirewallSpec) { s.Tags = []string{"bad tag"} },
	}
	for name, mod := range bad {
		s := ClusterFirewall("c1-fw", "c1", Ports{})
		mod(&s)
		if _, err := e.do.EnsureFirewall(ctx(t), s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("the cluster firewall itself is invalid: %v", err)
	}
	if n := len(e.fake.State().Requests); n != 0 {
		t.Fatalf("bad specs reached the API (%d routes)", n)
	}
}
