package fakeapi

import (
	"testing"

	"github.com/digitalocean/godo"
)

func fwReq(name string) *godo.FirewallRequest {
	return &godo.FirewallRequest{Name: name, Tags: []string{"c1"},
		InboundRules:  []godo.InboundRule{{Protocol: "tcp", PortRange: "80", Sources: &godo.Sources{Addresses: []string{"0.0.0.0/0"}}}},
		OutboundRules: []godo.OutboundRule{{Protocol: "udp", PortRange: "all", Destinations: &godo.Destinations{Addresses: []string{"::/0"}}}}}
}

func TestFirewallRules(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	for name, mod := range map[string]func(*godo.FirewallRequest){
		"name":       func(r *godo.FirewallRequest) { r.Name = "" },
		"protocol":   func(r *godo.FirewallRequest) { r.InboundRules[0].Protocol = "gre" },
		"ports":      func(r *godo.FirewallRequest) { r.InboundRules[0].PortRange = "0-70000" },
		"no ports":   func(r *godo.FirewallRequest) { r.InboundRules[0].PortRange = "" },
		"no sources": func(r *godo.FirewallRequest) { r.InboundRules[0].Sources = nil },
		"address":    func(r *godo.FirewallRequest) { r.OutboundRules[0].Destinations.Addresses = []string{"nowhere"} },
		"droplet":    func(r *godo.FirewallRequest) { r.DropletIDs = []int{1} },
	} {
		req := fwReq("fw")
		mod(req)
		if _, _, err := c.Firewalls.Create(ctx(t), req); doStatus(err) != 422 {
			t.Errorf("%s: %v, want 422", name, err)
		}
	}
	fw, _, err := c.Firewalls.Create(ctx(t), fwReq("fw"))
	if err != nil || fw.Status != "succeeded" || len(fw.InboundRules) != 1 {
		t.Fatalf("create: %+v %v", fw, err)
	}
	// PUT replaces everything; a refused PUT changes nothing.
	up := fwReq("fw2")
	up.InboundRules = nil
	up.Tags = nil
	if got, _, err := c.Firewalls.Update(ctx(t), fw.ID, up); err != nil || got.Name != "fw2" || len(got.InboundRules) != 0 || len(got.Tags) != 0 {
		t.Fatalf("update: %+v %v", got, err)
	}
	bad := fwReq("fw3")
	bad.InboundRules[0].Protocol = "x"
	if _, _, err := c.Firewalls.Update(ctx(t), fw.ID, bad); doStatus(err) != 422 {
		t.Fatalf("bad update: %v", err)
	}
	if got := s.State().Firewalls; len(got) != 1 || got[0].Name != "fw2" {
		t.Fatalf("after a refused update: %+v", got)
	}
	if _, _, err := c.Firewalls.Get(ctx(t), "nope"); doStatus(err) != 404 {
		t.Fatalf("get unknown: %v", err)
	}
	if _, err := c.Firewalls.Delete(ctx(t), fw.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Firewalls.Delete(ctx(t), fw.ID); doStatus(err) != 404 {
		t.Fatalf("second delete: %v", err)
	}
}
