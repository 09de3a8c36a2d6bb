package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// foreignRecord creates an A record of host in the fake zone the way a
// person would (no dropmesh comment), with the real cloudflare-go client,
// and returns its id.
func foreignRecord(t *testing.T, cfURL, host, ip string) string {
	t.Helper()
	ctx := context.Background()
	cl := cloudflare.NewClient(option.WithBaseURL(strings.TrimSuffix(cfURL, "/")+"/"), option.WithAPIToken(fakeapi.DefaultToken), option.WithMaxRetries(0))
	zone := host[strings.Index(host, ".")+1:]
	zs, err := cl.Zones.List(ctx, zones.ZoneListParams{Name: cloudflare.F(zone)})
	if err != nil || len(zs.Result) != 1 {
		t.Fatalf("zone %s: %v %+v", zone, err, zs)
	}
	r, err := cl.DNS.Records.New(ctx, dns.RecordNewParams{ZoneID: cloudflare.F(zs.Result[0].ID), Body: dns.ARecordParam{
		Name: cloudflare.F(host), Type: cloudflare.F(dns.ARecordTypeA), Content: cloudflare.F(ip), TTL: cloudflare.F(dns.TTL(300))}})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// fakeA is the fake's A records of host.
func fakeA(fake *fakeapi.Server, host string) []fakeapi.CFRecord {
	var out []fakeapi.CFRecord
	for _, r := range fake.State().DNSRecords {
		if r.Name == host && r.Type == "A" {
			out = append(out, r)
		}
	}
	return out
}

// TestDeployRefusesHostsItMayNotTouch deploys through the API, with a
// deployer token and with the cluster key, against the fake Cloudflare: a
// host with a foreign A record is refused 409 naming the record, which stays
// as it was; a host in no zone is 400; a wildcard and the zone's apex are
// 403 for a deployer and accepted from an admin. No refusal commits a deploy.
func TestDeployRefusesHostsItMayNotTouch(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	cfURL := url + fakeapi.CloudflarePath
	c := startCluster(t, 1, func(i int, cfg *Config) { cfg.Init.CFBaseURL = cfURL })
	n := c.leader()
	ctx := context.Background()
	tok := fakeapi.DefaultToken
	if err := n.agent.UpdateSettings(ctx, control.SettingsRequest{CFToken: &tok}); err != nil {
		t.Fatal(err)
	}
	made, err := n.agent.CreateToken(ctx, control.TokenRequest{Name: "ci", Role: raftfsm.RoleDeployer}, "test")
	if err != nil {
		t.Fatal(err)
	}
	deployer, err := apiclient.New(apiclient.Config{Addrs: []string{n.agent.APIAddr()}, APIKey: made.Token, CACert: n.agent.ClusterCAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	admin := c.apiClient(n)
	const taken = "taken.example.test"
	id := foreignRecord(t, cfURL, taken, "198.51.100.7")

	deploys := func() int {
		k := 0
		n.agent.View(func(s *raftfsm.State) { k = len(s.Deploys) })
		return k
	}
	spec := func(svc string, hosts ...string) raftfsm.ServiceSpec {
		s := webSpec("nginx:1")
		s.Service, s.Hosts = svc, hosts
		return s
	}
	for _, tc := range []struct {
		name   string
		cl     *apiclient.Client
		spec   raftfsm.ServiceSpec
		status int
		says   string
	}{
		{"foreign record, deployer", deployer, spec("web", "ok.example.test", taken), http.StatusConflict, taken + " A 198.51.100.7 (id " + id + ")"},
		{"foreign record, admin", admin, spec("web", taken), http.StatusConflict, taken + " A 198.51.100.7 (id " + id + ")"},
		{"no zone", deployer, spec("web", "app.nowhere.test"), http.StatusBadRequest, "app.nowhere.test is not within any Cloudflare zone"},
		{"wildcard", deployer, spec("web", "*.example.test"), http.StatusForbidden, "wildcard hosts are admin-only"},
		{"apex", deployer, spec("web", "example.test"), http.StatusForbidden, "apex of the zone example.test"},
	} {
		before := deploys()
		_, err := tc.cl.DeploySpec(ctx, tc.spec)
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.says) {
			t.Fatalf("%s: %v, want %d saying %q", tc.name, err, tc.status, tc.says)
		}
		if deploys() != before {
			t.Fatalf("%s: a refused deploy was committed", tc.name)
		}
	}
	if got := fakeA(fake, taken); len(got) != 1 || got[0].ID != id || got[0].Content != "198.51.100.7" || got[0].Comment != nil {
		t.Fatalf("the foreign record changed: %+v", got)
	}
	n.agent.View(func(s *raftfsm.State) {
		if len(s.Services) != 0 {
			t.Fatalf("services after refusals: %v", raftfsm.SortedKeys(s.Services))
		}
	})

	// A deployer deploys a host of its own; an admin a wildcard and the apex.
	if _, err := deployer.DeploySpec(ctx, spec("web", "ok.example.test")); err != nil {
		t.Fatalf("deployer, a free host: %v", err)
	}
	if _, err := admin.DeploySpec(ctx, spec("wild", "*.example.test", "example.test")); err != nil {
		t.Fatalf("admin, wildcard and apex: %v", err)
	}
	// A deployer may redeploy what an admin gave the service.
	if _, err := deployer.DeploySpec(ctx, func() raftfsm.ServiceSpec {
		s := spec("wild", "*.example.test", "example.test")
		s.Replicas = 2
		return s
	}()); err != nil {
		t.Fatalf("deployer redeploying an admin's hosts: %v", err)
	}
}
