package cloud

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/leader/leadertest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The DNS tests run on the in-memory state (leadertest): intents and
// events are committed to an FSM directly, without raft or the mesh.

// newTestDNS is the DNS duty over st, with intent ids from a counter.
func newTestDNS(st *leadertest.State) *DNS {
	n := 0
	intents := NewIntents(st, func() time.Time { return time.Now().UTC() }, func() string { n++; return fmt.Sprintf("int-%d", n) })
	return NewDNS(st, intents, func() time.Time { return time.Now().UTC() })
}

// intentFor finds the (first) intent of kind on target.
func intentFor(s *raftfsm.State, kind raftfsm.IntentKind, target string) *raftfsm.Intent {
	var found *raftfsm.Intent
	for _, in := range s.Cloud.Intents {
		if in.Kind == kind && in.Target == target && (found == nil || in.CreatedAt.Before(found.CreatedAt)) {
			found = in
		}
	}
	return found
}

func dnsState() *raftfsm.State {
	s := raftfsm.NewState()
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		s.Nodes[id] = &raftfsm.Node{ID: id, Region: "nyc3", Status: raftfsm.NodeActive, PublicIP: []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}[i]}
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
	got := Desired(s, "node-3")
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
	if w := Desired(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.2"}) ||
		w.why["203.0.113.1"] != "node-1 is rebooting (5 pings in a row failed)" {
		t.Fatalf("failover: %+v", w)
	}
	// ...but the last one standing keeps its record.
	s.Nodes["node-2"].Status = raftfsm.NodeDead
	if w := Desired(s, "node-3")["shop.example.com"]; len(w.ips) != 2 || !strings.HasSuffix(w.why["203.0.113.2"], "but no other node serves the host") {
		t.Fatalf("all down: %+v", w)
	}
	// An instance that is not ready is not published.
	s.Nodes["node-1"].Status, s.Nodes["node-2"].Status = raftfsm.NodeActive, raftfsm.NodeActive
	s.Instances["abcdef/shop/prod/web#1"].Phase = raftfsm.PhaseStarting
	if w := Desired(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.1"}) ||
		w.why["203.0.113.2"] != "node-2 has no ready instance of abcdef/shop/prod/web (starting)" {
		t.Fatalf("not ready: %+v", w)
	}
}

// TestDNSChangesAreEventsAndFailuresBackOff drives the leader's DNS sync
// against the fake Cloudflare: every change of a host's records (an address
// taken out, put back, the host removed) is an event with its reason, and a
// host whose change failed is not tried again for RetryBackoff, also
// when the state already holds records for it.
func TestDNSChangesAreEventsAndFailuresBackOff(t *testing.T) {
	fake, err := fakeapi.New(fakeapi.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { fake.Close() })
	st := leadertest.New()
	cd := newTestDNS(st)
	cf := cloudops.NewCloudflare(cloudops.CFConfig{Token: fakeapi.DefaultToken, BaseURL: srv.URL,
		Retry: cloudops.RetryPolicy{MaxAttempts: 1}})
	ctx := context.Background()
	const host, a1, a2 = "web.example.test", "203.0.113.1", "203.0.113.2"
	both := Want{ips: []string{a1, a2}, why: map[string]string{a1: "node-1 serves web", a2: "node-2 serves web"}}

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
		st.View(func(s *raftfsm.State) {
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
		st.View(func(s *raftfsm.State) {
			for _, ev := range s.Events.Items {
				if ev.Kind == raftfsm.EventDNS {
					e = ev
				}
			}
		})
		return e
	}

	if err := cd.Sync(ctx, cf, map[string]Want{host: both}); err != nil {
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
	failover := Want{ips: []string{a2}, why: map[string]string{a1: "node-1 is rebooting (5 pings in a row failed)", a2: "node-2 serves web"}}
	if err := cd.Sync(ctx, cf, map[string]Want{host: failover}); err == nil {
		t.Fatal("a failing Cloudflare: no error")
	}
	tries, requests := attempts(), fake.State().Requests
	if tries != 2 {
		t.Fatalf("%d ensure intents, want 2", tries)
	}
	// ...and is not tried again within the back-off, although the state
	// holds records for the host.
	for range 3 {
		if err := cd.Sync(ctx, cf, map[string]Want{host: failover}); err != nil {
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
	cd.lastTry[host] = time.Now().Add(-RetryBackoff - time.Second)
	if err := cd.Sync(ctx, cf, map[string]Want{host: failover}); err != nil {
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
	if err := cd.Sync(ctx, cf, map[string]Want{host: both}); err != nil {
		t.Fatal(err)
	}
	if got := zone(); !slices.Equal(got, both.ips) {
		t.Fatalf("zone after the recovery: %v", got)
	}
	if e := lastDNSEvent(); e.Message != host+": added "+a1+" (node-1 serves web); now "+a1+", "+a2 || e.Severity != raftfsm.SeverityInfo {
		t.Fatalf("recovery event: %+v", e)
	}

	// Nothing publishes the host any more: its records go, said so.
	if err := cd.Sync(ctx, cf, map[string]Want{}); err != nil {
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

// TestDNSDutyNeverTouchesForeignRecords drives the leader's DNS sync against
// the fake Cloudflare: a host held by a foreign A record is not published
// and the record is untouched, said once in an event of the service; a host
// dropmesh published is still managed, and when it goes, only dropmesh's
// records go, not a foreign one added beside them.
func TestDNSDutyNeverTouchesForeignRecords(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	cfURL := url + fakeapi.CloudflarePath
	st := leadertest.New()
	cd := newTestDNS(st)
	cf := cloudops.NewCloudflare(cloudops.CFConfig{Token: fakeapi.DefaultToken, BaseURL: cfURL,
		Retry: cloudops.RetryPolicy{MaxAttempts: 1}})
	ctx := context.Background()
	const taken, mine, ip = "taken.example.test", "mine.example.test", "203.0.113.1"
	id := foreignRecord(t, cfURL, taken, "198.51.100.7")
	want := map[string]Want{
		taken: {ips: []string{ip}, service: "abcdef/shop/prod/web"},
		mine:  {ips: []string{ip}, service: "abcdef/shop/prod/api"},
	}
	foreignEvents := func() []raftfsm.Event {
		var out []raftfsm.Event
		st.View(func(s *raftfsm.State) {
			for _, e := range s.Events.Items {
				if e.Kind == raftfsm.EventDNS && strings.HasPrefix(e.Message, taken+": not published") {
					out = append(out, e)
				}
			}
		})
		return out
	}

	err := cd.Sync(ctx, cf, want)
	if !errors.Is(err, cloudops.ErrForeignRecord) || !strings.Contains(err.Error(), "(id "+id+")") {
		t.Fatalf("sync over a foreign record: %v", err)
	}
	if got := fakeA(fake, taken); len(got) != 1 || got[0].ID != id || got[0].Content != "198.51.100.7" || got[0].TTL != 300 {
		t.Fatalf("the foreign record changed: %+v", got)
	}
	if got := fakeA(fake, mine); len(got) != 1 || got[0].Content != ip || got[0].Comment == nil || *got[0].Comment != cloudops.OwnerComment {
		t.Fatalf("dropmesh's host was not published beside the refused one: %+v", got)
	}
	evs := foreignEvents()
	if len(evs) != 1 || evs[0].Service != "abcdef/shop/prod/web" || evs[0].Severity != raftfsm.SeverityWarn || !strings.Contains(evs[0].Message, "198.51.100.7") {
		t.Fatalf("refusal events: %+v", evs)
	}
	st.View(func(s *raftfsm.State) {
		if _, ok := s.Cloud.DNS[taken]; ok {
			t.Fatal("the state claims records of the refused host")
		}
		in := intentFor(s, raftfsm.IntentEnsureDNS, taken)
		if in == nil || in.Status != raftfsm.IntentFailed || !strings.Contains(in.Error, "not made by dropmesh") {
			t.Fatalf("the refused intent: %+v", in)
		}
	})
	// Tried again after the back-off: refused again, not said again.
	delete(cd.lastTry, taken)
	if err := cd.Sync(ctx, cf, want); !errors.Is(err, cloudops.ErrForeignRecord) {
		t.Fatalf("second sync: %v", err)
	}
	if evs := foreignEvents(); len(evs) != 1 {
		t.Fatalf("the refusal was said %d times", len(evs))
	}

	// Someone adds a record beside dropmesh's; the host is undeployed: only
	// dropmesh's record goes.
	other := foreignRecord(t, cfURL, mine, "198.51.100.8")
	delete(cd.lastTry, taken)
	if err := cd.Sync(ctx, cf, map[string]Want{}); err != nil {
		t.Fatalf("removing the hosts: %v", err)
	}
	if got := fakeA(fake, mine); len(got) != 1 || got[0].ID != other {
		t.Fatalf("after the undeploy %s holds %+v, want only the foreign %s", mine, got, other)
	}
	if got := fakeA(fake, taken); len(got) != 1 || got[0].ID != id {
		t.Fatalf("after the undeploy %s holds %+v", taken, got)
	}
}

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
