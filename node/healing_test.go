package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/leader/healer"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// containerEnv reads a container's environment from Docker.
func containerEnv(t testing.TB, name string) []string {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	info, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.Env
}

// instanceOf returns the one instance of service name (project/env/service) on node n.
func instanceOf(n *testNode, service string) raftfsm.Instance {
	var out raftfsm.Instance
	n.agent.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if strings.HasSuffix(in.Service, "/"+service) {
				out = *in
			}
		}
	})
	return out
}

func post(t testing.TB, url string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestFailingHealthIsRestartedAfterThreeChecks(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "heal", nil)
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/web")
	c.waitState(n, 10*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })

	post(t, "http://"+in.Address+"/admin/health?fail=1")
	c.waitState(n, 30*time.Second, "the restart", func(s *raftfsm.State) bool { return s.Instances[in.ID].Restarts == 1 })
	// The sample app keeps its state in memory: restarted, it is healthy again.
	c.waitState(n, 30*time.Second, "healthy again after the restart", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Health == raftfsm.HealthHealthy && in.RestartNonceSeen == in.RestartNonce
	})
	// The replicated log says when the restart came: right after the third
	// unhealthy check in a row, as the state counted them, and only once.
	c.stop(n, false)
	restarts := restartsInLog(t, n, in.ID)
	if len(restarts) != 1 || restarts[0] != healer.RestartAfterUnhealthy {
		t.Fatalf("restarts of %s after %v unhealthy checks in a row, want one after exactly %d", in.ID, restarts, healer.RestartAfterUnhealthy)
	}
}

// restartsInLog replays the raft log of stopped node n on a fresh FSM and
// returns, for each RestartInstance of instance id, the unhealthy streak
// (ConsecutiveUnhealthy) the state held just before it was applied.
func restartsInLog(t testing.TB, n *testNode, id string) []int {
	t.Helper()
	store, err := raftboltdb.NewBoltStore(filepath.Join(n.cfg.DataDir, "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 {
		t.Fatalf("the raft log of %s starts at %d: compacted, cannot replay it", n.cfg.NodeID, first)
	}
	fsm := raftfsm.NewFSM(nil)
	var streaks []int
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("raft log entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		if cmd, err := raftfsm.Decode(l.Data); err == nil {
			if r, ok := cmd.(*raftfsm.RestartInstance); ok && r.Instance == id {
				fsm.View(func(s *raftfsm.State) {
					if in, ok := s.Instances[id]; ok {
						streaks = append(streaks, in.ConsecutiveUnhealthy)
					}
				})
			}
		}
		fsm.Apply(&l)
	}
	return streaks
}

// healActions reads node n's dropmesh_heal_actions_total for kind: the
// healing actions it took as leader.
func healActions(t testing.TB, n *testNode, kind string) float64 {
	t.Helper()
	families, err := n.agent.Metrics().Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "dropmesh_heal_actions_total" {
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
	return 0
}

// TestOnlyTheLeaderRestartsOnceAcrossALeaderChange runs three agents on the
// local Docker engine with a service pinned to a follower, makes it fail its
// health checks, and hands the leadership over in the middle of the
// unhealthy streak. Exactly one restart is committed, by whichever node led
// when the streak reached three (the new leader when the hand-over came
// first, as it normally does), and never by the node that did not lead.
func TestOnlyTheLeaderRestartsOnceAcrossALeaderChange(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	c := startCluster(t, 3, func(i int, cfg *Config) { cfg.NoRuntime = false })
	t.Cleanup(func() { removeClusterContainers(t, rt, c) })
	old := c.leader()
	waitFor(t, 30*time.Second, "three voters", func() bool {
		return allVoters(voters(t, old.agent), "node-1", "node-2", "node-3")
	})
	var follower *testNode
	for _, n := range c.nodes {
		if n != old {
			follower = n
			break
		}
	}
	spec := webSpec(runtimetest.BuildTestImage(t, rt, "leader-heal", nil))
	spec.Nodes, spec.Replicas = []string{follower.cfg.NodeID}, 1
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(old, "prod/web")
	c.waitState(old, 15*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })

	post(t, "http://"+in.Address+"/admin/health?fail=1")
	c.waitState(old, 15*time.Second, "the first unhealthy check", func(s *raftfsm.State) bool {
		return s.Instances[in.ID].ConsecutiveUnhealthy >= 1
	})
	if cur := c.leader(); cur != old {
		t.Logf("the leadership moved from %s to %s on its own", old.cfg.NodeID, cur.cfg.NodeID)
		old = cur
	}
	if err := old.agent.store.TransferLeadership(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	next := c.leader()
	if next == old {
		t.Fatal("the leadership did not move")
	}
	// Everything committed before the hand-over is applied on the new
	// leader: whether the old one restarted already is now settled.
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := next.agent.store.Barrier(bctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	restartedBefore := false
	next.agent.View(func(s *raftfsm.State) { restartedBefore = s.Instances[in.ID].Restarts > 0 })

	c.waitState(next, 45*time.Second, "the restart, and healthy again", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Restarts >= 1 && in.Health == raftfsm.HealthHealthy && in.RestartNonceSeen == in.RestartNonce
	})
	// A few more checks: no second restart follows.
	var checked time.Time
	next.agent.View(func(s *raftfsm.State) { checked = s.Instances[in.ID].CheckedAt })
	c.waitState(next, 15*time.Second, "three more checks", func(s *raftfsm.State) bool {
		return s.Instances[in.ID].CheckedAt.After(checked.Add(2 * time.Second))
	})

	byNode := map[string]float64{}
	total := 0.0
	for _, n := range c.nodes {
		byNode[n.cfg.NodeID] = healActions(t, n, "restart")
		total += byNode[n.cfg.NodeID]
	}
	actor := next
	if restartedBefore {
		actor = old
		t.Logf("the streak reached %d before the hand-over finished: the old leader restarted", healer.RestartAfterUnhealthy)
	}
	if total != 1 || byNode[actor.cfg.NodeID] != 1 {
		t.Fatalf("restarts taken per node %v, want exactly one, by %s", byNode, actor.cfg.NodeID)
	}
	var events int
	next.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Items {
			if e.Kind == raftfsm.EventHealRestart && e.Instance == in.ID {
				events++
			}
		}
	})
	if events != 1 {
		t.Fatalf("%d heal.restart events for %s, want 1", events, in.ID)
	}
	// The log agrees: one RestartInstance, after a streak of at least three
	// (reports may arrive while the new leader takes over).
	c.stopAll()
	streaks := restartsInLog(t, next, in.ID)
	if len(streaks) != 1 || streaks[0] < healer.RestartAfterUnhealthy {
		t.Fatalf("restarts in the log after streaks %v, want one after at least %d", streaks, healer.RestartAfterUnhealthy)
	}
}

func TestErrorLineMakesItDegraded(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "degraded", nil)
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/web")
	c.waitState(n, 10*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })
	post(t, "http://"+in.Address+"/admin/log?level=error&msg=database+unreachable")
	c.waitState(n, 10*time.Second, "degraded", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Health == raftfsm.HealthDegraded && strings.Contains(in.HealthReason, "database unreachable")
	})
	// Only new lines count: the next check is healthy again.
	c.waitState(n, 10*time.Second, "healthy once the error line is old", func(s *raftfsm.State) bool {
		return s.Instances[in.ID].Health == raftfsm.HealthHealthy
	})
}

func TestWorkerThatExitsIsRestarted(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "worker", nil)
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "jobs", Kind: raftfsm.KindWorker, Image: img}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/jobs")
	if err := rt.Stop(context.Background(), in.ContainerID, time.Second); err != nil {
		t.Fatal(err)
	}
	c.waitState(n, 15*time.Second, "unhealthy", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthUnhealthy })
	c.waitState(n, 30*time.Second, "restarted and running", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Restarts >= 1 && in.Health == raftfsm.HealthHealthy
	})
	ctr, err := rt.Inspect(context.Background(), in.ContainerID)
	if err != nil || !ctr.Running {
		t.Fatalf("worker container after healing: running=%v err=%v", ctr.Running, err)
	}
}

// TestServiceLogPatternAndOnDemandHealth: a service's health.log_pattern
// decides what its containers' error lines are, in the health loop and in
// GET /v1/containers/{name}/health, which answers the loop's own check (the
// HTTP health path, the pattern; a cron job judged on its runs) without
// taking lines away from the loop.
func TestServiceLogPatternAndOnDemandHealth(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "pattern", nil)
	spec := webSpec(img)
	spec.Health.LogPattern = `^OOPS\b`
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/web")
	c.waitState(n, 10*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })
	cl := c.apiClient(n)
	ask := func(name string, since time.Time) control.HealthAnswer {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		a, err := cl.ContainerHealth(ctx, name, 0, since)
		if err != nil {
			t.Fatalf("GET /v1/containers/%s/health: %v", name, err)
		}
		return a
	}
	start := time.Now()

	// A line the default pattern calls an error, which the service's own
	// pattern excludes: the loop keeps it healthy.
	post(t, "http://"+in.Address+"/admin/log?level=error&msg=default+pattern+line")
	logged := time.Now()
	c.waitState(n, 15*time.Second, "two checks after the line", func(s *raftfsm.State) bool {
		return s.Instances[in.ID].CheckedAt.After(logged.Add(time.Second))
	})
	n.agent.View(func(s *raftfsm.State) {
		for _, seg := range s.Instances[in.ID].History.Segments() {
			if seg.Status != raftfsm.HealthHealthy {
				t.Fatalf("history %+v: a default-pattern line made it %s", s.Instances[in.ID].History.Segments(), seg.Status)
			}
		}
	})
	if a := ask(in.Container, start); a.Status != raftfsm.HealthHealthy {
		t.Fatalf("on demand after the default-pattern line: %+v", a)
	}

	// A line matching the service's pattern: degraded, in the loop...
	post(t, "http://"+in.Address+"/admin/log?level=oops&msg=custom+pattern+line")
	c.waitState(n, 15*time.Second, "degraded on the custom line", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Health == raftfsm.HealthDegraded && in.HealthReason == "OOPS custom pattern line"
	})
	// ...and on demand, from the given time (the loop's cursor has moved
	// past the line already; the on-demand check does not use it).
	if a := ask(in.Container, start); a.Status != raftfsm.HealthDegraded || a.Reason != "OOPS custom pattern line" {
		t.Fatalf("on demand since %s: %+v", start.Format(time.RFC3339Nano), a)
	}
	if a := ask(in.Container, time.Now()); a.Status != raftfsm.HealthHealthy {
		t.Fatalf("on demand since now: %+v", a)
	}

	// The health path is probed over HTTP: a 500 is unhealthy on demand,
	// though the port still accepts connections.
	post(t, "http://"+in.Address+"/admin/health?fail=1")
	if a := ask(in.Container, time.Now()); a.Status != raftfsm.HealthUnhealthy || !strings.Contains(a.Reason, "500") {
		t.Fatalf("on demand with a failing health path: %+v", a)
	}
	post(t, "http://"+in.Address+"/admin/health?fail=0")

	// A cron job is judged on its runs, as the loop judges it: a run that
	// exited 0 is healthy, although its container has exited.
	cron := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "report", Kind: raftfsm.KindCron, Image: img,
		Command: []string{"once"}, Schedule: "@every 1s"}
	if d := c.deploy(cron); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("cron deploy: %s %s", d.Status, d.Reason)
	}
	job := instanceOf(n, "prod/report")
	c.waitState(n, 30*time.Second, "a run of the job", func(s *raftfsm.State) bool { return s.Instances[job.ID].Runs >= 1 })
	var base string
	n.agent.View(func(s *raftfsm.State) { base = n.agent.containerBase(*s.Services[job.Service], job.Slot) })
	if a := ask(base, time.Time{}); a.Status != raftfsm.HealthHealthy || !strings.HasPrefix(a.Reason, "last run exited 0") {
		t.Fatalf("on demand for the cron job %s: %+v", base, a)
	}
}

// TestInvalidLogPatternIsRefused: a deploy whose health.log_pattern the
// checks could not use is refused as invalid (the API's 400), naming the
// field, and writes nothing.
func TestInvalidLogPatternIsRefused(t *testing.T) {
	c := startCluster(t, 1, nil)
	leader := c.leader()
	spec := webSpec("127.0.0.1:5000/shop/web:1")
	for _, p := range []string{`(oops`, `.*`, strings.Repeat("x", raftfsm.MaxLogPatternLen+1)} {
		spec.Health.LogPattern = p
		_, err := leader.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec, Actor: "test"})
		if !errors.Is(err, raftfsm.ErrInvalid) || !strings.Contains(err.Error(), "health.log_pattern") {
			t.Fatalf("pattern %.20q: %v, want an invalid health.log_pattern", p, err)
		}
	}
	leader.agent.View(func(s *raftfsm.State) {
		if len(s.Services) != 0 || len(s.Deploys) != 0 {
			t.Fatalf("after refused deploys: services %v, deploys %v", raftfsm.SortedKeys(s.Services), raftfsm.SortedKeys(s.Deploys))
		}
	})
}

// TestSecondOpinionVetoIsRecordedOncePerStreak: a container its node calls
// unhealthy but another node reaches is not restarted; the veto is one
// heal.veto event per unhealthy streak however long it lasts (not a
// heal.restart, which webhooks would announce as a restart), and a new
// streak gets its own.
func TestSecondOpinionVetoIsRecordedOncePerStreak(t *testing.T) {
	c := startCluster(t, 3, nil)
	reachable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(reachable.Close)
	addr := reachable.Listener.Addr().String()
	var owner *testNode // the node whose own view of the containers is wrong
	for _, n := range c.nodes {
		if n.cfg.NodeID == "node-2" {
			owner = n
		}
	}
	ctx := context.Background()
	// Two services on node-2, whose agent reports what the test says (it
	// runs no containers): "web" sorts before "web2", so the healer judges
	// web first in every round.
	deploy := func(name string) string {
		t.Helper()
		spec := webSpec("127.0.0.1:5000/shop/" + name + ":1")
		spec.Service, spec.Hosts, spec.Nodes = name, nil, []string{owner.cfg.NodeID}
		res, err := c.leader().agent.Deploy(ctx, control.DeployRequest{Spec: spec, Actor: "test"})
		if err != nil {
			t.Fatalf("deploy %s: %v", name, err)
		}
		id := raftfsm.InstanceID(res.Service, 0)
		c.waitState(owner, 15*time.Second, "the roll-out to place "+id, func(s *raftfsm.State) bool {
			in, ok := s.Instances[id]
			return ok && in.DesiredGeneration == res.Generation
		})
		if err := owner.agent.report(ctx, &raftfsm.ReportInstances{At: time.Now().UTC(), Node: owner.cfg.NodeID, Reports: []raftfsm.InstanceReport{
			{Instance: id, Generation: res.Generation, ContainerID: "c-" + name, Container: name, Address: addr, State: "running", Phase: raftfsm.PhaseReady}}}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	web, web2 := deploy("web"), deploy("web2")
	checked := time.Now().UTC()
	report := func(id, status string, times int) {
		t.Helper()
		for range times {
			checked = checked.Add(time.Second)
			if err := owner.agent.report(ctx, &raftfsm.ReportHealth{At: time.Now().UTC(), Node: owner.cfg.NodeID, Results: []raftfsm.HealthReport{
				{Instance: id, Status: status, Reason: "connection refused", CheckedAt: checked}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	events := func(id, kind string) int {
		n := 0
		owner.agent.View(func(s *raftfsm.State) {
			for _, e := range s.Events.Items {
				if e.Kind == kind && e.Instance == id {
					n++
				}
			}
		})
		return n
	}
	waitVetoes := func(id string, want int) {
		t.Helper()
		waitFor(t, 15*time.Second, fmt.Sprintf("%d heal.veto events for %s", want, id), func() bool { return events(id, raftfsm.EventHealVeto) >= want })
	}

	report(web, raftfsm.HealthUnhealthy, healer.RestartAfterUnhealthy)
	waitVetoes(web, 1)
	// The streak goes on to three times the threshold. Then web2 reaches the
	// threshold: its veto is recorded by a healer round that saw web at 9
	// and judged it first, so by then a second veto of web would be there.
	report(web, raftfsm.HealthUnhealthy, 2*healer.RestartAfterUnhealthy)
	report(web2, raftfsm.HealthUnhealthy, healer.RestartAfterUnhealthy)
	waitVetoes(web2, 1)
	if n := events(web, raftfsm.EventHealVeto); n != 1 {
		t.Fatalf("%d heal.veto events in one streak of %d unhealthy checks, want 1", n, 3*healer.RestartAfterUnhealthy)
	}
	// A healthy check ends the streak; the next one is vetoed, once, anew.
	report(web, raftfsm.HealthHealthy, 1)
	report(web, raftfsm.HealthUnhealthy, healer.RestartAfterUnhealthy)
	waitVetoes(web, 2)

	owner.agent.View(func(s *raftfsm.State) {
		for _, id := range []string{web, web2} {
			if in := s.Instances[id]; in.Restarts != 0 || in.RestartNonce != 0 {
				t.Fatalf("%s restarted (%d) although another node reaches it", id, in.Restarts)
			}
		}
		for _, e := range s.Events.Items {
			if e.Kind == raftfsm.EventHealRestart {
				t.Fatalf("a heal.restart event for a restart that did not happen: %+v", e)
			}
			if e.Kind == raftfsm.EventHealVeto && (e.Severity != raftfsm.SeverityWarn || !strings.Contains(e.Message, "another node reaches it")) {
				t.Fatalf("veto event %+v", e)
			}
		}
	})
}
