package fakeapi

import (
	"testing"

	"github.com/digitalocean/godo"
)

func TestVPCRules(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	v, _, err := c.VPCs.Create(ctx(t), &godo.VPCCreateRequest{Name: "net", RegionSlug: "nyc3", IPRange: "10.10.0.0/20"})
	if err != nil || v.IPRange != "10.10.0.0/20" || v.URN != "do:vpc:"+v.ID {
		t.Fatalf("create: %+v %v", v, err)
	}
	for name, req := range map[string]*godo.VPCCreateRequest{
		"same name": {Name: "net", RegionSlug: "nyc3"},
		"overlap":   {Name: "net2", RegionSlug: "nyc3", IPRange: "10.10.8.0/24"},
		"public":    {Name: "net3", RegionSlug: "nyc3", IPRange: "8.8.0.0/16"},
		"region":    {Name: "net4", RegionSlug: "xyz9"},
		"name":      {Name: "", RegionSlug: "nyc3"},
	} {
		if _, _, err := c.VPCs.Create(ctx(t), req); doStatus(err) != 422 && doStatus(err) != 409 {
			t.Errorf("%s: %v, want 422 or 409", name, err)
		}
	}
	auto, _, err := c.VPCs.Create(ctx(t), &godo.VPCCreateRequest{Name: "auto", RegionSlug: "nyc3"})
	if err != nil || auto.IPRange == "" || auto.IPRange == v.IPRange {
		t.Fatalf("auto range: %+v %v", auto, err)
	}
	req := createReq("node-1")
	req.VPCUUID = v.ID
	if _, _, err := c.Droplets.Create(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VPCs.Delete(ctx(t), v.ID); doStatus(err) != 403 {
		t.Fatalf("deleting a VPC with members: %v, want 403 as DigitalOcean documents", err)
	}
	// A droplet without a VPC lands in its region's default one.
	d, _, err := c.Droplets.Create(ctx(t), createReq("node-2"))
	if err != nil {
		t.Fatal(err)
	}
	def, _, err := c.VPCs.Get(ctx(t), d.VPCUUID)
	if err != nil || !def.Default || def.RegionSlug != "nyc3" {
		t.Fatalf("default VPC: %+v %v", def, err)
	}
	if _, err := c.VPCs.Delete(ctx(t), def.ID); doStatus(err) != 403 {
		t.Fatalf("deleting a default VPC: %v, want 403", err)
	}
	if _, err := c.VPCs.Delete(ctx(t), auto.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.VPCs.Get(ctx(t), auto.ID); doStatus(err) != 404 {
		t.Fatalf("a deleted VPC: %v", err)
	}
	if st := s.State(); len(st.VPCs) != 2 {
		t.Fatalf("%d VPCs left, want the refused two", len(st.VPCs))
	}
}
