package node

import (
	"context"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func dnsState() *raftfsm.State {
	s := placementState("nyc3", "nyc3", "nyc3")
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		s.Nodes[id].PublicIP = []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}[i]
	}
	key := "abcdef/shop/prod/web"
	spec := raftfsm.ServiceSpec{Kind: raftfsm.KindService, Port: 8080, Hosts: []string{"shop.example.com"}, Replicas: 2}
	s.Services[key] = &raftfsm.Service{Key: key, Spec: spec, LiveGeneration: 1, Revisions: []raftfsm.Revision{{Generation: 1, Spec: spec}}}
	for i, n := range []string{"node-1", "node-2"} {
		id := raftfsm.InstanceID(key, i)
		s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Slot: i, Node: n, Phase: raftfsm.PhaseReady, Generation: 1, DesiredGeneration: 1}
	}
	s.Settings.UIHost = "mesh.example.com"
	return s
}

func TestDesiredDNS(t *testing.T) {
	s := dnsState()
	got := desiredDNS(s, "node-3")
	if w := got["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.1", "203.0.113.2"}) || !w.proxied {
		t.Fatalf("shop: %+v", w)
	}
	if w := got["shop.example.com"]; w.why["203.0.113.1"] != "node-1 serves abcdef/shop/prod/web" {
		t.Fatalf("shop: why %q", w.why)
	}
	if w := got["mesh.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.3"}) {
		t.Fatalf("ui host: %+v", w)
	}
	// A rebooting node leaves the set while another serves the host...
	s.Nodes["node-1"].Status, s.Nodes["node-1"].StatusReason = raftfsm.NodeRebooting, "5 pings in a row failed"
	if w := desiredDNS(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.2"}) ||
		w.why["203.0.113.1"] != "node-1 is rebooting (5 pings in a row failed)" {
		t.Fatalf("failover: %+v", w)
	}
	// ...but the last one standing keeps its record.
	s.Nodes["node-2"].Status = raftfsm.NodeDead
	if w := desiredDNS(s, "node-3")["shop.example.com"]; len(w.ips) != 2 || !strings.HasSuffix(w.why["203.0.113.2"], "but no other node serves the host") {
		t.Fatalf("all down: %+v", w)
	}
	// An instance that is not ready is not published.
	s.Nodes["node-1"].Status, s.Nodes["node-2"].Status = raftfsm.NodeActive, raftfsm.NodeActive
	s.Instances["abcdef/shop/prod/web#1"].Phase = raftfsm.PhaseStarting
	if w := desiredDNS(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.1"}) ||
		w.why["203.0.113.2"] != "node-2 has no ready instance of abcdef/shop/prod/web (starting)" {
		t.Fatalf("not ready: %+v", w)
	}
}

// TestDNSChangesAreEventsAndFailuresBackOff drives the leader's DNS sync
// against the fake Cloudflare: every change of a host's records (an address
// taken out, put back, the host removed) is an event with its reason, and a
// host whose change failed is not tried again for dnsRetryBackoff, also
// when the state already holds records for it.
func TestDNSChangesAreEventsAndFailuresBackOff(t *testing.T) {
	fake, err := fakeapi.New(fakeapi.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { fake.Close() })
	c := startCluster(t, 1, nil)
	leader := c.leader()
	cd := &cloudDuty{a: leader.agent}
	cf := cloud{cf: cloudops.NewCloudflare(cloudops.CFConfig{Token: fakeapi.DefaultToken, BaseURL: srv.URL,
		Retry: cloudops.RetryPolicy{MaxAttempts: 1}})}
	ctx := context.Background()
	const host, a1, a2 = "web.example.test", "203.0.113.1", "203.0.113.2"
	both := dnsWant{ips: []string{a1, a2}, why: map[string]string{a1: "node-1 serves web", a2: "node-2 serves web"}}

	zone := func() []string {
		var ips []string
		for _, r := range fake.State().DNSRecords {
			if r.Name == host && r.Type == "A" {
				ips = append(ips, r.Content)
			}
		}
		slices.Sort(ips)
		return ips
	}
	attempts := func() int {
		n := 0
		leader.agent.View(func(s *raftfsm.State) {
			for _, in := range s.Cloud.Intents {
				if in.Kind == raftfsm.IntentEnsureDNS && in.Target == host {
					n++
				}
			}
		})
		return n
	}
	lastDNSEvent := func() raftfsm.Event {
		var e raftfsm.Event
		leader.agent.View(func(s *raftfsm.State) {
			for _, ev := range s.Events.Items {
				if ev.Kind == raftfsm.EventDNS {
					e = ev
				}
			}
		})
		return e
	}

	if err := cd.syncDNS(ctx, cf, map[string]dnsWant{host: both}); err != nil {
		t.Fatal(err)
	}
	if got := zone(); !slices.Equal(got, both.ips) {
		t.Fatalf("zone after publishing: %v", got)
	}
	if e := lastDNSEvent(); e.Message != host+": added "+a1+" (node-1 serves web); added "+a2+" (node-2 serves web); now "+a1+", "+a2 {
		t.Fatalf("publish event: %+v", e)
	}

	// node-1 goes down, and Cloudflare fails: the change is refused...
	if err := fake.InjectFault(fakeapi.Fault{PathPrefix: "/client/v4/zones", Status: 500}); err != nil {
		t.Fatal(err)
	}
	failover := dnsWant{ips: []string{a2}, why: map[string]string{a1: "node-1 is rebooting (5 pings in a row failed)", a2: "node-2 serves web"}}
	if err := cd.syncDNS(ctx, cf, map[string]dnsWant{host: failover}); err == nil {
		t.Fatal("a failing Cloudflare: no error")
	}
	tries, requests := attempts(), fake.State().Requests
	if tries != 2 {
		t.Fatalf("%d ensure intents, want 2", tries)
	}
	// ...and is not tried again within the back-off, although the state
	// holds records for the host.
	for range 3 {
		if err := cd.syncDNS(ctx, cf, map[string]dnsWant{host: failover}); err != nil {
			t.Fatalf("within the back-off: %v", err)
		}
	}
	if n := attempts(); n != tries {
		t.Fatalf("%d ensure intents within the back-off, want %d", n, tries)
	}
	if got := fake.State().Requests; !maps.Equal(got, requests) {
		t.Fatalf("Cloudflare called within the back-off: %v, then %v", requests, got)
	}

	// Once the back-off has passed, it is tried again and succeeds.
	fake.ClearFaults()
	cd.lastTry[host] = time.Now().Add(-dnsRetryBackoff - time.Second)
	if err := cd.syncDNS(ctx, cf, map[string]dnsWant{host: failover}); err != nil {
		t.Fatal(err)
	}
	if got := zone(); !slices.Equal(got, []string{a2}) {
		t.Fatalf("zone after the failover: %v", got)
	}
	e := lastDNSEvent()
	if e.Message != host+": took "+a1+" out (node-1 is rebooting (5 pings in a row failed)); now "+a2 || e.Severity != raftfsm.SeverityWarn {
		t.Fatalf("failover event: %+v", e)
	}

	// node-1 is back: its record returns, with the reason.
	if err := cd.syncDNS(ctx, cf, map[string]dnsWant{host: both}); err != nil {
		t.Fatal(err)
	}
	if got := zone(); !slices.Equal(got, both.ips) {
		t.Fatalf("zone after the recovery: %v", got)
	}
	if e := lastDNSEvent(); e.Message != host+": added "+a1+" (node-1 serves web); now "+a1+", "+a2 || e.Severity != raftfsm.SeverityInfo {
		t.Fatalf("recovery event: %+v", e)
	}

	// Nothing publishes the host any more: its records go, said so.
	if err := cd.syncDNS(ctx, cf, map[string]dnsWant{}); err != nil {
		t.Fatal(err)
	}
	if got := zone(); len(got) != 0 {
		t.Fatalf("zone after the host went: %v", got)
	}
	want := host + ": took " + a1 + " out (nothing publishes the host any more); took " + a2 + " out (nothing publishes the host any more); no A record left"
	if e := lastDNSEvent(); e.Message != want {
		t.Fatalf("removal event: %q, want %q", e.Message, want)
	}
}
