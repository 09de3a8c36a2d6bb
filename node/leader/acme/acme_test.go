package acme

import (
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestIssueRenewFailUndeploy: a service's two hosts get one certificate
// through DNS-01 against Pebble validating at the fake cloud's DNS server;
// the TXT records are gone after; a renewal replaces it; a CA outage
// leaves it served with an event and a backoff (one failed order, no
// storm); undeploy removes it.
func TestIssueRenewFailUndeploy(t *testing.T) {
	e := newEnv(t, 0)
	key := e.c.deploy("web", "web.example.test", "www.example.test")
	name := raftfsm.CertNameForService(key)
	e.run(e.config())
	e.waitFor("certificate issued", func() bool { c, _ := e.c.cert(name); return c.Status == raftfsm.CertValid })
	c, _ := e.c.cert(name)
	for _, h := range []string{"web.example.test", "www.example.test"} {
		e.verify(c.CertPEM, h)
	}
	if n := e.txtRecords(); n != 0 {
		t.Fatalf("%d TXT records left", n)
	}
	if e.ca.NewOrders() != 1 || e.ca.Finalizes() != 1 {
		t.Fatalf("orders %d, finalizes %d", e.ca.NewOrders(), e.ca.Finalizes())
	}

	// Renewal: a window longer than the lifetime makes it due now.
	first := c.CertPEM
	e.c.must(&raftfsm.SetACMEConfig{At: t0, Config: raftfsm.ACMEConfig{Enabled: true, Directory: e.ca.DirectoryURL(),
		DirectoryCA: string(e.ca.DirectoryCA()), RenewBefore: raftfsm.Duration(100 * 24 * time.Hour)}})
	e.waitFor("renewed", func() bool { c, _ := e.c.cert(name); return c.CertPEM != first && c.Status == raftfsm.CertValid })
	c, _ = e.c.cert(name)
	second := c.CertPEM

	// An outage: the renewal fails once, the chain stays, the event says so,
	// and the next attempt waits the backoff.
	e.ca.SetFailing(true)
	e.waitFor("renewal failed", func() bool { c, _ := e.c.cert(name); return c.Status == raftfsm.CertFailed })
	c, _ = e.c.cert(name)
	if c.CertPEM != second || c.Failures != 1 || c.NextAttempt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("after the failure: status %s failures %d next %v same chain %v", c.Status, c.Failures, c.NextAttempt, c.CertPEM == second)
	}
	var failedEvent bool
	e.c.View(func(s *raftfsm.State) {
		for _, ev := range s.Events.Items {
			failedEvent = failedEvent || (ev.Kind == raftfsm.EventCertFailed && ev.Service == key)
		}
	})
	if !failedEvent {
		t.Fatal("no cert.failed event")
	}
	if n := e.txtRecords(); n != 0 {
		t.Fatalf("%d TXT records left after the failure", n)
	}

	e.c.must(&raftfsm.UndeployService{At: t0, Service: key})
	e.waitFor("certificate removed", func() bool { _, ok := e.c.cert(name); return !ok })
	var open int
	e.c.View(func(s *raftfsm.State) {
		for _, o := range s.ACME.Orders {
			if o.Status == raftfsm.OrderOpen {
				open++
			}
		}
	})
	if open != 0 {
		t.Fatalf("%d open orders after undeploy", open)
	}
}

// TestLeaderLostMidOrderResumes: a leader that placed and finalized an
// order but could not commit the certificate leaves the order open; the
// next leader fetches that order and downloads its certificate without
// placing or finalizing another.
func TestLeaderLostMidOrderResumes(t *testing.T) {
	e := newEnv(t, 0)
	key := e.c.deploy("web", "web.example.test")
	name := raftfsm.CertNameForService(key)
	e.c.setRefuse(func(c raftfsm.Command) bool { return c.Type() == raftfsm.CmdResolveACMEOrder })
	stop := e.run(e.config())
	e.waitFor("the issued certificate's commit refused", func() bool { return e.c.refusals() > 0 })
	stop()
	var url string
	e.c.View(func(s *raftfsm.State) {
		if o := s.ACME.OpenOrder(name); o != nil {
			url = o.URL
		}
	})
	if url == "" {
		t.Fatal("no open order with a URL after the leader was lost")
	}
	e.c.setRefuse(nil)
	e.run(e.config())
	e.waitFor("certificate issued by the next leader", func() bool { c, _ := e.c.cert(name); return c.Status == raftfsm.CertValid })
	c, _ := e.c.cert(name)
	e.verify(c.CertPEM, "web.example.test")
	if e.ca.NewOrders() != 1 || e.ca.Finalizes() != 1 {
		t.Fatalf("orders %d, finalizes %d: want one of each", e.ca.NewOrders(), e.ca.Finalizes())
	}
}

func TestDesiredAndPlan(t *testing.T) {
	c := newCluster(t)
	web := c.deploy("web", "b.example.test", "a.example.test")
	spec := raftfsm.ServiceSpec{Workspace: testWS, Project: "shop", Env: "prod", Service: "api", Image: "x:1", Port: 80,
		Hosts: []string{"api.example.test"}, Replicas: 1, TLS: &raftfsm.TLSSpec{Wildcard: true}}
	spec.Normalize()
	c.must(&raftfsm.DeployService{At: t0, DeployID: "d-api", WorkspaceID: testWS, Spec: spec, Placement: []raftfsm.Assignment{{Slot: 0, Node: "node-1"}}})
	ui := "mesh.example.test"
	c.must(&raftfsm.UpdateSettings{At: t0, UIHost: &ui})
	var want map[string][]string
	var w work
	c.View(func(s *raftfsm.State) { want = Desired(s); w = planWork(s, t0) })
	if got := want[raftfsm.CertNameForUI(ui)]; len(got) != 1 || got[0] != ui {
		t.Fatalf("UI certificate: %v", want)
	}
	if got := want[raftfsm.CertNameForService(web)]; len(got) != 2 || got[0] != "a.example.test" {
		t.Fatalf("service certificate: %v", want)
	}
	if got := want[raftfsm.CertNameForZone("example.test")]; len(got) != 2 || got[0] != "*.example.test" {
		t.Fatalf("wildcard: %v", want)
	}
	if w.issue != "" {
		t.Fatalf("ACME is not enabled, yet the plan orders %s", w.issue)
	}
}

// TestPlanReordersAfterADirectoryChange: a valid certificate from another
// directory than the configured one (staging, then production) is due now;
// one from the configured directory waits for its renewal time.
func TestPlanReordersAfterADirectoryChange(t *testing.T) {
	s := raftfsm.NewState()
	spec := raftfsm.ServiceSpec{Kind: raftfsm.KindService, Port: 80, Hosts: []string{"web.example.test"}}
	s.Services["ws/p/e/web"] = &raftfsm.Service{Key: "ws/p/e/web", Spec: spec}
	name := raftfsm.CertNameForService("ws/p/e/web")
	s.ACME.Certs[name] = &raftfsm.IssuedCert{Name: name, Hosts: []string{"web.example.test"}, CertPEM: "chain", Key: "v1:AAAA",
		NotAfter: t0.Add(60 * 24 * time.Hour), Status: raftfsm.CertValid, Directory: raftfsm.LetsEncryptStagingDirectory}
	s.ACME.Config = raftfsm.ACMEConfig{Enabled: true, Directory: raftfsm.LetsEncryptStagingDirectory}
	if w := planWork(s, t0); w.issue != "" || w.next.IsZero() {
		t.Fatalf("same directory: %+v", w)
	}
	s.ACME.Config.Directory = raftfsm.LetsEncryptDirectory
	if w := planWork(s, t0); w.issue != name {
		t.Fatalf("new directory: %+v", w)
	}
}
