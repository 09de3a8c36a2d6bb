package cloudops

import (
	"errors"
	"testing"
)

func TestEnsureVPCIsIdempotent(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	v, err := e.do.EnsureVPC(c, "c1-vpc", "nyc3", "10.110.0.0/20")
	if err != nil {
		t.Fatal(err)
	}
	if v.ID == "" || v.Name != "c1-vpc" || v.Region != "nyc3" || v.IPRange != "10.110.0.0/20" {
		t.Fatalf("created %+v", v)
	}
	again, err := e.do.EnsureVPC(c, "c1-vpc", "nyc3", "10.110.0.0/20")
	if err != nil || again.ID != v.ID {
		t.Fatalf("second ensure: %+v %v", again, err)
	}
	any, err := e.do.EnsureVPC(c, "c1-vpc", "nyc3", "")
	if err != nil || any.ID != v.ID {
		t.Fatalf("ensure without a range: %+v %v", any, err)
	}
	if n := len(e.fake.State().VPCs); n != 1 {
		t.Fatalf("fake holds %d VPCs", n)
	}
	if n := e.fake.Requests("POST /v2/vpcs"); n != 1 {
		t.Fatalf("%d creates", n)
	}
	if _, err := e.do.EnsureVPC(c, "c1-vpc", "sfo3", "10.110.0.0/20"); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name in another region: %v, want ErrConflict", err)
	}
	if _, err := e.do.EnsureVPC(c, "c1-vpc", "nyc3", "10.120.0.0/20"); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name with another range: %v, want ErrConflict", err)
	}
	for _, bad := range []string{"10.0.0.0/8", "8.8.0.0/16", "10.110.0.1/20", "nope"} {
		if _, err := e.do.EnsureVPC(c, "x", "nyc3", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("range %q: %v, want ErrInvalid", bad, err)
		}
	}
	// A droplet created in the VPC lands there.
	s := spec("c1-node-1")
	s.VPCUUID = v.ID
	d, err := e.do.CreateDroplet(c, s)
	if err != nil || d.VPCUUID != v.ID {
		t.Fatalf("droplet in vpc: %+v %v", d, err)
	}
}
