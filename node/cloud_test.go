package node

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/control"
	cloudduty "github.com/dropmesh/dropmesh/node/leader/cloud"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// fakeDO is a real godo-backed client of the fake cloud at url, for a test
// to set the scene with.
func fakeDO(url string) *cloudops.DigitalOcean {
	return cloudops.NewDigitalOcean(cloudops.DOConfig{Token: fakeapi.DefaultToken, BaseURL: url, PollInterval: 20 * time.Millisecond})
}

// fakeDroplet creates an active droplet in the fake cloud, outside any
// cluster (tag "test-scene").
func fakeDroplet(t testing.TB, url, name, region string) cloudops.Droplet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	do := fakeDO(url)
	d, err := do.CreateDroplet(ctx, cloudops.DropletSpec{Name: name, Region: region, Size: "s-1vcpu-1gb", ImageSlug: "debian-12-x64",
		Tags: []string{"test-scene"}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = do.WaitForDropletStatus(ctx, d.ID, cloudops.StatusActive); err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeSnapshot makes a droplet snapshot called name in the fake cloud, in
// every region given, the way bootstrap makes the base snapshot: from a
// droplet, then transferred; the droplet is deleted.
func fakeSnapshot(t testing.TB, url, name string, regions ...string) cloudops.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	do := fakeDO(url)
	d := fakeDroplet(t, url, name+"-builder", regions[0])
	act, err := do.SnapshotDroplet(ctx, d.ID, name)
	if err == nil {
		_, err = do.WaitForAction(ctx, act.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	sn, err := do.FindSnapshot(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions[1:] {
		if act, err = do.TransferSnapshot(ctx, sn.ID, r); err == nil {
			_, err = do.WaitForAction(ctx, act.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := do.DeleteDroplet(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	return sn
}

// fakeClusterDroplets counts the fake cloud's droplets carrying the
// cluster's tag, by name.
func fakeClusterDroplets(t testing.TB, fake *fakeapi.Server, n *testNode) map[string]int {
	var tag string
	n.agent.View(func(s *raftfsm.State) { tag = cloudduty.ClusterTag(s.Settings) })
	out := map[string]int{}
	for _, d := range fake.State().Droplets {
		for _, dt := range d.Tags {
			if dt == tag {
				out[d.Name]++
			}
		}
	}
	return out
}

// enableDO gives the cluster the fake's token and regions, and changes
// what mut changes besides.
func enableDO(t testing.TB, n *testNode, mut func(r *control.SettingsRequest)) {
	t.Helper()
	token := fakeapi.DefaultToken
	req := control.SettingsRequest{DOToken: &token, Regions: []string{"nyc3"}}
	if mut != nil {
		mut(&req)
	}
	if err := n.agent.UpdateSettings(context.Background(), req); err != nil {
		t.Fatal(err)
	}
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

// A provider call that hangs past the deadline fails its round promptly,
// with an error naming the droplet, and the next round carries on: through
// the round's deadline, or through the request timeout of the HTTP clients.
func TestHungCreateFailsTheRoundPromptlyAndTheNextRoundProceeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"round deadline", func(c *Config) { c.CloudRoundTimeout = 2 * time.Second }},
		{"request timeout", func(c *Config) { c.CloudRequestTimeout = 500 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
			fakeSnapshot(t, url, "base", "nyc3")
			c := startCluster(t, 1, func(i int, cfg *Config) {
				cfg.Init.DOBaseURL, cfg.Init.BaseSnapshot, cfg.ClusterName = url, "base", "hung"
				cfg.CloudPollInterval = 100 * time.Millisecond
				tc.cfg(cfg)
			})
			n := c.leader()
			// The create hangs for an hour, and never happens.
			if err := fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Latency: time.Hour, Times: 1}); err != nil {
				t.Fatal(err)
			}
			want := 2
			start := time.Now()
			enableDO(t, n, func(r *control.SettingsRequest) { r.DesiredNodes = &want })
			var failedAfter time.Duration
			c.waitState(n, 30*time.Second, "the hung create to fail its attempt", func(s *raftfsm.State) bool {
				in := intentFor(s, raftfsm.IntentCreateDroplet, "hung-node-2")
				if in == nil || in.Attempts == 0 {
					return false
				}
				if !strings.Contains(in.Error, `create droplet "hung-node-2"`) {
					t.Fatalf("the failed attempt does not name the droplet: %q", in.Error)
				}
				failedAfter = time.Since(start)
				return true
			})
			if failedAfter > 20*time.Second {
				t.Fatalf("the hung create failed after %s", failedAfter)
			}
			c.waitState(n, 30*time.Second, "the next attempt to create the droplet", func(s *raftfsm.State) bool {
				d, ok := s.Cloud.Droplets["hung-node-2"]
				return ok && d.Status == raftfsm.DropletActive && len(s.Cloud.PendingIntents()) == 0
			})
			if got := fakeClusterDroplets(t, fake, n); len(got) != 1 || got["hung-node-2"] != 1 {
				t.Fatalf("fake cloud holds %v, want hung-node-2 once", got)
			}
		})
	}
}

// A droplet that never turns active fails its creation after
// DropletActiveTimeout, naming it, and does not hold up the other cloud
// work meanwhile (here: the DNS record of the UI host).
func TestDropletThatNeverTurnsActiveDoesNotBlockTheCloudDuty(t *testing.T) {
	opts := fakeapi.DefaultOptions()
	opts.ActionDelay = time.Hour // droplets stay "new"
	fake, url := fakeapitest.Start(t, opts)
	c := startCluster(t, 1, func(i int, cfg *Config) {
		// Local mode: droplets boot from an image slug, as no snapshot can
		// be made while actions never complete.
		cfg.LocalMode = true
		cfg.Init.DOBaseURL, cfg.Init.CFBaseURL, cfg.Init.BaseSnapshot, cfg.ClusterName = url, url+fakeapi.CloudflarePath, "dropmesh-local-base", "stuck"
		cfg.DropletActiveTimeout = 4 * time.Second
	})
	n := c.leader()
	want := 2
	enableDO(t, n, func(r *control.SettingsRequest) { r.DesiredNodes = &want })
	waitFor(t, 30*time.Second, "the droplet to exist, still new", func() bool { return fakeClusterDroplets(t, fake, n)["stuck-node-2"] == 1 })
	cf, host := fakeapi.DefaultToken, "mesh.example.test"
	if err := n.agent.UpdateSettings(context.Background(), control.SettingsRequest{CFToken: &cf, UIHost: &host}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the UI host's record while the droplet is still coming up", func() bool {
		for _, r := range fake.State().DNSRecords {
			if r.Name == host {
				return true
			}
		}
		return false
	})
	pending := false
	n.agent.View(func(s *raftfsm.State) {
		in := intentFor(s, raftfsm.IntentCreateDroplet, "stuck-node-2")
		pending = in != nil && in.Status == raftfsm.IntentPending
	})
	if !pending {
		t.Fatal("the creation was no longer pending when DNS was done: the test proves nothing")
	}
	c.waitState(n, 30*time.Second, "the creation to fail after DropletActiveTimeout", func(s *raftfsm.State) bool {
		in := intentFor(s, raftfsm.IntentCreateDroplet, "stuck-node-2")
		return in != nil && in.Status == raftfsm.IntentFailed
	})
	n.agent.View(func(s *raftfsm.State) {
		in := intentFor(s, raftfsm.IntentCreateDroplet, "stuck-node-2")
		if !strings.Contains(in.Error, `create droplet "stuck-node-2"`) || !strings.Contains(in.Error, `still "new"`) {
			t.Fatalf("error %q does not say which droplet is stuck", in.Error)
		}
	})
	if got := fakeClusterDroplets(t, fake, n); len(got) != 1 {
		t.Fatalf("fake cloud holds %v: a retry made another droplet", got)
	}
}

// A base snapshot that does not exist fails the creation with a clear
// error; its name is never sent as an image slug.
func TestMissingBaseSnapshotFailsTheCreation(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	c := startCluster(t, 1, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL, cfg.Init.BaseSnapshot, cfg.ClusterName = url, "no-such-snapshot", "nobase"
	})
	n := c.leader()
	want := 2
	enableDO(t, n, func(r *control.SettingsRequest) { r.DesiredNodes = &want })
	c.waitState(n, 30*time.Second, "the creation to fail", func(s *raftfsm.State) bool {
		in := intentFor(s, raftfsm.IntentCreateDroplet, "nobase-node-2")
		return in != nil && in.Status == raftfsm.IntentFailed
	})
	n.agent.View(func(s *raftfsm.State) {
		in := intentFor(s, raftfsm.IntentCreateDroplet, "nobase-node-2")
		if !strings.Contains(in.Error, `base snapshot "no-such-snapshot" is not in the DigitalOcean account`) {
			t.Fatalf("error %q", in.Error)
		}
	})
	if n := fake.Requests("POST /v2/droplets"); n != 0 {
		t.Fatalf("%d droplet creations were sent", n)
	}
}

// Creations requested with `nodes add` run in the leader's cloud duty: an
// intent is never created twice at once, however long its create takes
// (here longer than the ten seconds after which the old code took a pending
// intent for abandoned and ran it a second time).
func TestAddNodesCreatesEachDropletOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a create held for 11 s")
	}
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	fakeSnapshot(t, url, "base", "nyc3", "ams3")
	c := startCluster(t, 1, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL, cfg.Init.BaseSnapshot, cfg.ClusterName = url, "base", "add"
		cfg.CloudPollInterval = 100 * time.Millisecond
	})
	n := c.leader()
	enableDO(t, n, func(r *control.SettingsRequest) { r.Regions = []string{"nyc3", "ams3"} })
	// The first create is made only after 11 s: a second create of the same
	// intent meanwhile would find nothing by name, and make a duplicate.
	if err := fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Latency: 11 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	fake.ResetRequests() // the base snapshot's builder was a create too
	ids, err := n.agent.AddNodes(context.Background(), control.AddNodesRequest{Count: 2})
	if err != nil || len(ids) != 2 {
		t.Fatalf("add nodes: %v %v", ids, err)
	}
	c.waitState(n, 60*time.Second, "both droplets recorded", func(s *raftfsm.State) bool {
		return len(s.Cloud.Droplets) == 2 && len(s.Cloud.PendingIntents()) == 0
	})
	got := fakeClusterDroplets(t, fake, n)
	if len(got) != 2 || got["add-node-2"] != 1 || got["add-node-3"] != 1 {
		t.Fatalf("fake cloud holds %v, want add-node-2 and add-node-3 once each", got)
	}
	if posts := fake.Requests("POST /v2/droplets"); posts != 2 {
		t.Fatalf("%d creates sent for 2 droplets", posts)
	}
}

// resumeIntents finishes a pending intent nobody carries out, at once (no
// age heuristic), and never one a duty of this node is carrying out.
func TestResumeSkipsIntentsInFlight(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	orphan := fakeDroplet(t, url, "orphan", "nyc3")
	c := startCluster(t, 1, func(i int, cfg *Config) { cfg.Init.DOBaseURL, cfg.ClusterName = url, "resume" })
	n := c.leader()
	enableDO(t, n, nil)
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- n.agent.cloudShared.intents.Run(context.Background(), raftfsm.IntentDeleteDroplet, "held", map[string]string{"droplet_id": "1"},
			func(ctx context.Context) (raftfsm.CloudChanges, error) {
				close(held)
				<-release
				return raftfsm.CloudChanges{}, nil
			})
	}()
	<-held
	// A previous leader's intent, recorded after the held one: resume runs
	// it, and passes the held one on the way.
	if _, err := n.agent.apply(context.Background(), &raftfsm.RecordIntent{At: n.agent.now(), Intent: raftfsm.Intent{ID: newID("int"),
		Kind: raftfsm.IntentDeleteDroplet, Target: "orphan", Params: map[string]string{"droplet_id": strconv.Itoa(orphan.ID)}}}); err != nil {
		t.Fatal(err)
	}
	n.agent.kickLeader()
	c.waitState(n, 30*time.Second, "the orphan intent resumed", func(s *raftfsm.State) bool {
		in := intentFor(s, raftfsm.IntentDeleteDroplet, "orphan")
		return in != nil && in.Status == raftfsm.IntentDone
	})
	if n := fake.Requests("DELETE /v2/droplets/{id}"); n != 1 {
		t.Fatalf("%d deletes, want the orphan's only", n)
	}
	n.agent.View(func(s *raftfsm.State) {
		if in := intentFor(s, raftfsm.IntentDeleteDroplet, "held"); in == nil || in.Status != raftfsm.IntentPending || in.Attempts != 0 {
			t.Fatalf("the intent in flight was touched: %+v", in)
		}
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// healCount reads the agent's heal_actions_total{kind}.
func healCount(t testing.TB, a *Agent, kind string) float64 {
	t.Helper()
	families, err := a.Metrics().Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasSuffix(f.GetName(), "heal_actions_total") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no heal_actions_total{kind=%q}", kind)
	return 0
}

// A power-cycle DigitalOcean refused is not counted as a reboot; without a
// DigitalOcean token the error says so in words.
func TestPowerCycleCountsOnlyRebootsThatHappened(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.DefaultOptions())
	d := fakeDroplet(t, url, "pc-node-1", "nyc3")
	c := startCluster(t, 1, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL, cfg.ClusterName, cfg.DropletID = url, "pc", d.ID
	})
	n := c.leader()
	var node raftfsm.Node
	n.agent.View(func(s *raftfsm.State) { node = *s.Nodes["node-1"] })
	err := n.agent.powerCycle(context.Background(), node, "test")
	if err == nil || strings.Contains(err.Error(), "%!") || !strings.Contains(err.Error(), "power-cycle node-1: no DigitalOcean token") {
		t.Fatalf("power-cycle without a cloud: %v", err)
	}
	enableDO(t, n, nil)
	if err := fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets/", Status: 500, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.agent.RebootNode(context.Background(), "node-1"); err == nil || cloudops.StatusCode(err) != 500 {
		t.Fatalf("reboot through a 500: %v", err)
	}
	if got := healCount(t, n.agent, "reboot"); got != 0 {
		t.Fatalf("a refused power-cycle counted as %v reboots", got)
	}
	if err := n.agent.RebootNode(context.Background(), "node-1"); err != nil {
		t.Fatal(err)
	}
	if got := healCount(t, n.agent, "reboot"); got != 1 {
		t.Fatalf("%v reboots counted, want 1", got)
	}
	cycles := 0
	for _, fd := range fake.State().Droplets {
		for _, a := range fd.Actions {
			if fd.ID == d.ID && a.Type == "power_cycle" {
				cycles++
			}
		}
	}
	if cycles != 1 {
		t.Fatalf("%d power-cycles at the provider, want 1", cycles)
	}
}
