package cloud

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/leader/leadertest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The shape ensures the VPC and the firewall through intents, once per
// settings: a second round with the same settings calls nothing.
func TestShapeEnsuresVPCAndFirewallOnce(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	do := cloudops.NewDigitalOcean(cloudops.DOConfig{Token: fakeapi.DefaultToken, BaseURL: url, PollInterval: 20 * time.Millisecond,
		Retry: cloudops.RetryPolicy{MaxAttempts: 1}})
	st := leadertest.New()
	st.Must(t, &raftfsm.InitCluster{At: time.Now().UTC(), ClusterID: "c0ffee00aa", ClusterName: "shape", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: "9fe5e6",
		Settings: &raftfsm.Settings{Regions: []string{"nyc3"}}})
	n := 0
	intents := NewIntents(st, func() time.Time { return time.Now().UTC() }, func() string { n++; return fmt.Sprintf("int-%d", n) })
	sh := NewShape(st, intents, cloudops.DefaultPorts(), false)
	ctx := context.Background()
	for range 2 {
		if err := sh.Round(ctx, do); err != nil {
			t.Fatal(err)
		}
	}
	fs := fake.State()
	if len(fs.VPCs) != 1 || fs.VPCs[0].Name != "shape-vpc" || fs.VPCs[0].IPRange != VPCRange {
		t.Fatalf("vpcs %+v", fs.VPCs)
	}
	if len(fs.Firewalls) != 1 || fs.Firewalls[0].Name != "shape-firewall" || fs.Firewalls[0].Tags[0] != "dropmesh-shape-c0ffee00" {
		t.Fatalf("firewalls %+v", fs.Firewalls)
	}
	st.View(func(s *raftfsm.State) {
		if s.Cloud.VPC == nil || s.Cloud.Firewall == nil {
			t.Fatalf("state: vpc %+v firewall %+v", s.Cloud.VPC, s.Cloud.Firewall)
		}
		if len(s.Cloud.Intents) != 2 {
			t.Fatalf("%d intents for one shape, want 2 (the second round is a no-op)", len(s.Cloud.Intents))
		}
		for _, in := range s.Cloud.Intents {
			if in.Status != raftfsm.IntentDone {
				t.Fatalf("intent %+v", in)
			}
		}
	})
}
