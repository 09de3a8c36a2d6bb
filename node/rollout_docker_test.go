package node

// Multi-node tests of the runtime: several agents in this process, each
// converging its own containers (labelled with its node) on the machine's
// one Docker engine, behind its own edge. They check what only several
// nodes show: the order of a roll-out across nodes, a failure that stops
// it, pulls and builds on every node, and a stateful service that moves.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/dropmesh/dropmesh/node/leader/rollout"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// dockerCluster starts n agents with the Docker runtime (on rt's engine)
// and the built-in proxy edge. Its cleanup stops the agents before it
// removes their containers, so no agent recreates one behind it; build the
// images before calling it, so that their cleanups run after.
func dockerCluster(t *testing.T, rt *runtime.Runtime, n int) *testCluster {
	t.Helper()
	c := startCluster(t, n, func(i int, cfg *Config) { cfg.NoRuntime = false })
	t.Cleanup(func() {
		c.stopAll()
		removeClusterContainers(t, rt, c)
	})
	return c
}

// nodeSpan is one node's part in a roll-out of one generation: when its
// container of the generation started and when its instance was reported
// ready with it.
type nodeSpan struct {
	node         string
	start, ready time.Time
}

// rolloutRecorder watches one service of a cluster from before its first
// deploy until the test ends. Per generation it records when each node's
// container of it started (Docker's start event, the engine's clock) and
// was removed, when each node's instance was reported ready with it (the
// time of the ready report, taken on the reporting agent, so it is not
// late by however long this recorder took to look), and, from every state
// of the leader's replica it sees, how many instances were moved to the
// generation together and how many were at once moved and not ready.
type rolloutRecorder struct {
	t       *testing.T
	service string

	mu        sync.Mutex
	started   map[int64]map[string]time.Time
	destroyed map[int64]map[string]bool
	ready     map[int64]map[string]time.Time
	tried     map[int64]map[string]bool // nodes whose instance was ever moved to the generation
	batch     map[int64]int             // instances moved to it in the first state that had any
	inflight  map[int64]int             // most instances moved to it and not (yet) ready at once
}

// recordRollouts starts a rolloutRecorder for service (its name, "web")
// on c; it stops when the test ends.
func recordRollouts(t *testing.T, c *testCluster, rt *runtime.Runtime, service string) *rolloutRecorder {
	t.Helper()
	r := &rolloutRecorder{t: t, service: service, started: map[int64]map[string]time.Time{}, destroyed: map[int64]map[string]bool{},
		ready: map[int64]map[string]time.Time{}, tried: map[int64]map[string]bool{}, batch: map[int64]int{}, inflight: map[int64]int{}}
	leader := c.leader().agent
	var cluster string
	leader.View(func(s *raftfsm.State) { cluster = s.Settings.ClusterID })
	if cluster == "" {
		t.Fatal("the cluster has no id yet")
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, errs := rt.Events(ctx, map[string]string{runtime.LabelManaged: "true", labelCluster: cluster, runtime.LabelService: service})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				r.container(ev)
			case err, ok := <-errs:
				if ok && err != nil && ctx.Err() == nil {
					t.Errorf("docker events of %s: %v", service, err)
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			changed := leader.Changed() // before reading: no change is missed
			leader.View(r.observe)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return r
}

// container records a Docker event of one of the service's containers.
func (r *rolloutRecorder) container(ev runtime.ContainerEvent) {
	gen, err := strconv.ParseInt(ev.Labels[runtime.LabelGeneration], 10, 64)
	node := ev.Labels[runtime.LabelNode]
	if err != nil || node == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Action {
	case "start":
		if r.started[gen] == nil {
			r.started[gen] = map[string]time.Time{}
		}
		if at, ok := r.started[gen][node]; !ok || ev.At.Before(at) {
			r.started[gen][node] = ev.At
		}
	case "destroy":
		if r.destroyed[gen] == nil {
			r.destroyed[gen] = map[string]bool{}
		}
		r.destroyed[gen][node] = true
	}
}

// observe records what one state of the leader's replica shows.
func (r *rolloutRecorder) observe(s *raftfsm.State) {
	now := time.Now()
	moved, notReady := map[int64]int{}, map[int64]int{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range raftfsm.SortedKeys(s.Instances) {
		in := s.Instances[id]
		gen := in.DesiredGeneration
		if !strings.HasSuffix(in.Service, "/"+r.service) || gen == 0 {
			continue
		}
		moved[gen]++
		if r.tried[gen] == nil {
			r.tried[gen] = map[string]bool{}
		}
		r.tried[gen][in.Node] = true
		switch {
		case rollout.InstanceReady(in, gen):
			if r.ready[gen] == nil {
				r.ready[gen] = map[string]time.Time{}
			}
			if _, ok := r.ready[gen][in.Node]; !ok {
				at := now
				if !in.ObservedAt.IsZero() && in.ObservedAt.Before(at) {
					at = in.ObservedAt
				}
				r.ready[gen][in.Node] = at
			}
		case in.FailedGeneration < gen:
			notReady[gen]++
		}
	}
	for gen, n := range moved {
		if _, ok := r.batch[gen]; !ok {
			r.batch[gen] = n
		}
		r.inflight[gen] = max(r.inflight[gen], notReady[gen])
	}
}

// spans waits until nodes nodes have started generation gen and been
// reported ready with it, and returns their spans in the order they started.
func (r *rolloutRecorder) spans(gen int64, nodes int) []nodeSpan {
	r.t.Helper()
	var out []nodeSpan
	waitFor(r.t, 20*time.Second, fmt.Sprintf("%d nodes to start generation %d and be ready with it", nodes, gen), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		out = out[:0]
		for node, start := range r.started[gen] {
			if ready, ok := r.ready[gen][node]; ok {
				out = append(out, nodeSpan{node: node, start: start, ready: ready})
			}
		}
		return len(out) == nodes
	})
	slices.SortFunc(out, func(a, b nodeSpan) int { return a.start.Compare(b.start) })
	return out
}

// startedOn returns the nodes that started a container of generation gen.
func (r *rolloutRecorder) startedOn(gen int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.started[gen]))
	for node := range r.started[gen] {
		out = append(out, node)
	}
	slices.Sort(out)
	return out
}

// triedOn returns the nodes whose instance the state ever moved to gen.
func (r *rolloutRecorder) triedOn(gen int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.tried[gen]))
	for node := range r.tried[gen] {
		out = append(out, node)
	}
	slices.Sort(out)
	return out
}

// removedOn returns the nodes whose container of generation gen was removed.
func (r *rolloutRecorder) removedOn(gen int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.destroyed[gen]))
	for node := range r.destroyed[gen] {
		out = append(out, node)
	}
	slices.Sort(out)
	return out
}

// counts returns the first batch moved to generation gen and the most
// instances that were moved to it and not ready at once.
func (r *rolloutRecorder) counts(gen int64) (batch, inflight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batch[gen], r.inflight[gen]
}

// fmtSpans renders spans relative to the first start, for failure messages.
func fmtSpans(spans []nodeSpan) string {
	if len(spans) == 0 {
		return "none"
	}
	t0 := spans[0].start
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s: started +%s, ready +%s; ", s.node, s.start.Sub(t0).Round(time.Millisecond), s.ready.Sub(t0).Round(time.Millisecond))
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// waitServing waits until every node's edge answers host with a body that
// contains want.
func waitServing(t *testing.T, nodes []*testNode, host, want string) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, 20*time.Second, n.cfg.NodeID+"'s edge to serve "+want, func() bool {
			code, body, err := edgeGet(n, host, "/")
			return err == nil && code == 200 && strings.Contains(body, want)
		})
	}
}

// requireServing fails the test unless every node's edge answers host,
// now, with a body that contains want.
func requireServing(t *testing.T, nodes []*testNode, host, want string) {
	t.Helper()
	for _, n := range nodes {
		if code, body, err := edgeGet(n, host, "/"); err != nil || code != 200 || !strings.Contains(body, want) {
			t.Fatalf("%s's edge: %d %q %v, want %s", n.cfg.NodeID, code, body, err, want)
		}
	}
}

// waitOldGone waits until the service's only containers on c are its
// replicas' serving ones: the roll-out's old generation is removed.
func waitOldGone(t *testing.T, c *testCluster, rt *runtime.Runtime, service string, replicas int) {
	t.Helper()
	waitFor(t, 30*time.Second, "the old generation of "+service+" to be removed", func() bool {
		total := 0
		for _, n := range c.nodes {
			list, err := rt.List(context.Background(), n.agent.ownLabels(map[string]string{runtime.LabelService: service}))
			if err != nil {
				return false
			}
			total += len(list)
		}
		return total == replicas
	})
}

// instancesOf returns the instances of service (its name) in a's replica, by slot.
func instancesOf(a *Agent, service string) []raftfsm.Instance {
	var out []raftfsm.Instance
	a.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if strings.HasSuffix(in.Service, "/"+service) {
				out = append(out, *in)
			}
		}
	})
	slices.SortFunc(out, func(a, b raftfsm.Instance) int { return a.Slot - b.Slot })
	return out
}

// TestRolloutOneNodeAtATimeThenInParallel rolls a service of three
// replicas on three nodes: with max_parallel 1 each node's new generation
// starts only once the previous node's is ready; with max_parallel 3 all
// three start before any is ready, and a request loop against the three
// edges sees no failure.
func TestRolloutOneNodeAtATimeThenInParallel(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	img := runtimetest.BuildTestImage(t, rt, "roll", nil)
	c := dockerCluster(t, rt, 3)
	rec := recordRollouts(t, c, rt, "web")
	const host = "web.example.test"

	spec := webSpec(img)
	spec.Replicas, spec.MaxParallel = 3, 3
	spec.Vars = map[string]string{"VERSION": "v1"}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("first deploy %s: %s", d.Status, d.Reason)
	}
	var nodes []string
	for _, in := range instancesOf(c.leader().agent, "web") {
		nodes = append(nodes, in.Node)
	}
	if slices.Sort(nodes); !slices.Equal(nodes, []string{"node-1", "node-2", "node-3"}) {
		t.Fatalf("3 replicas placed on %v, want one on each node", nodes)
	}
	waitServing(t, c.nodes, host, "v1")
	waitOldGone(t, c, rt, "web", 3)

	// One node at a time: no two nodes are ever between the start of their
	// new container and its ready report.
	spec.MaxParallel = 1
	spec.Vars = map[string]string{"VERSION": "v2"}
	d := c.deploy(spec)
	if d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy with max_parallel 1: %s: %s", d.Status, d.Reason)
	}
	spans := rec.spans(d.Generation, 3)
	for i := 1; i < len(spans); i++ {
		if !spans[i-1].ready.Before(spans[i].start) {
			t.Fatalf("max_parallel 1: %s started before %s was ready (%s)", spans[i].node, spans[i-1].node, fmtSpans(spans))
		}
	}
	if batch, inflight := rec.counts(d.Generation); batch != 1 || inflight != 1 {
		t.Fatalf("max_parallel 1: %d instances moved to generation %d first, at most %d in flight at once; want 1 and 1 (%s)",
			batch, d.Generation, inflight, fmtSpans(spans))
	}
	t.Logf("max_parallel 1: %s", fmtSpans(spans))
	requireServing(t, c.nodes, host, "v2")
	waitOldGone(t, c, rt, "web", 3)

	// All at once, under load. A longer start gate (ten passing checks
	// 100 ms apart) leaves the three starts time to happen inside it.
	spec.MaxParallel = 3
	spec.Health.StartChecks = 10
	spec.Vars = map[string]string{"VERSION": "v3"}
	var loads []*edgeLoad
	for _, n := range c.nodes {
		loads = append(loads, startEdgeLoad(n, host, 1, 90*time.Second, "v2", "v3"))
	}
	d = c.deploy(spec)
	if d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy with max_parallel 3: %s: %s", d.Status, d.Reason)
	}
	waitOldGone(t, c, rt, "web", 3)
	for i, l := range loads {
		l.waitMoreRequests(t, 5) // after the old containers' removal, too
		l.end(t, "max_parallel 3, "+c.nodes[i].cfg.NodeID+"'s edge")
	}
	spans = rec.spans(d.Generation, 3)
	firstReady := slices.MinFunc(spans, func(a, b nodeSpan) int { return a.ready.Compare(b.ready) })
	if last := spans[len(spans)-1]; !last.start.Before(firstReady.ready) {
		t.Fatalf("max_parallel 3: %s started after %s was ready (%s)", last.node, firstReady.node, fmtSpans(spans))
	}
	if batch, _ := rec.counts(d.Generation); batch != 3 {
		t.Fatalf("max_parallel 3: the first advance moved %d instances, want 3", batch)
	}
	t.Logf("max_parallel 3: %s", fmtSpans(spans))
	requireServing(t, c.nodes, host, "v3")
}

// TestRolloutFailureOnFirstNodeStopsIt: a generation that never passes its
// health checks fails on the first node, one at a time; the deploy fails
// with the reason, no other node ever tries it, and all three nodes,
// the first one rolled back, keep serving the old version.
func TestRolloutFailureOnFirstNodeStopsIt(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	img := runtimetest.BuildTestImage(t, rt, "fail", nil)
	c := dockerCluster(t, rt, 3)
	rec := recordRollouts(t, c, rt, "web")
	const host = "web.example.test"

	spec := webSpec(img)
	spec.Replicas, spec.MaxParallel = 3, 3
	spec.Vars = map[string]string{"VERSION": "v1"}
	first := c.deploy(spec)
	if first.Status != raftfsm.DeploySucceeded {
		t.Fatalf("first deploy %s: %s", first.Status, first.Reason)
	}
	waitServing(t, c.nodes, host, "v1")

	// The app listens on another port than the one published: the
	// container runs, its health checks never pass.
	bad := spec
	bad.MaxParallel = 1
	bad.Vars = map[string]string{"VERSION": "v2", "PORT": "9090"}
	bad.Health.StartTimeout = raftfsm.Duration(3 * time.Second)
	d := c.deploy(bad)
	firstNode := instancesOf(c.leader().agent, "web")[0].Node
	if d.Status != raftfsm.DeployFailed || !strings.Contains(d.Reason, "health check") || !strings.Contains(d.Reason, firstNode) {
		t.Fatalf("the never-healthy deploy: %s %q, want failed on %s with its health check's reason", d.Status, d.Reason, firstNode)
	}
	t.Logf("the deploy failed as it should: %s", d.Reason)
	waitFor(t, 20*time.Second, "the failed candidate to be removed", func() bool { return len(rec.removedOn(d.Generation)) == 1 })
	if on := rec.startedOn(d.Generation); !slices.Equal(on, []string{firstNode}) {
		t.Fatalf("generation %d started on %v, want only %s", d.Generation, on, firstNode)
	}
	if on := rec.triedOn(d.Generation); !slices.Equal(on, []string{firstNode}) {
		t.Fatalf("generation %d was given to %v, want only %s", d.Generation, on, firstNode)
	}
	for _, in := range instancesOf(c.leader().agent, "web") {
		if in.DesiredGeneration != first.Generation || in.Generation != first.Generation {
			t.Fatalf("after the failed roll-out %s on %s wants generation %d and runs %d, want %d", in.ID, in.Node,
				in.DesiredGeneration, in.Generation, first.Generation)
		}
	}
	// Never switched away from: every edge serves the old version at once.
	requireServing(t, c.nodes, host, "v1")
	for _, n := range c.nodes {
		list, err := rt.List(context.Background(), n.agent.ownLabels(map[string]string{runtime.LabelGeneration: strconv.FormatInt(d.Generation, 10)}))
		if err != nil || len(list) != 0 {
			t.Fatalf("containers of the failed generation on %s: %v %v", n.cfg.NodeID, list, err)
		}
	}
}

// TestRolloutPullsFromRegistryOnTwoNodes: two nodes pull an image from a
// registry (the engine has no copy of it under that name) and serve it,
// reporting the registry's digest; a tag the registry does not have fails
// the deploy with Docker's message, and the old version keeps serving.
func TestRolloutPullsFromRegistryOnTwoNodes(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	local := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	reg := runtimetest.StartRegistry(t)
	remote := reg + "/shop/web:1"
	runtimetest.PushImage(t, rt, local, remote)
	ctx := context.Background()
	pushed, err := rt.InspectImage(ctx, remote)
	if err != nil || pushed.Digest == "" {
		t.Fatalf("pushed image %+v, %v", pushed, err)
	}
	// Only the tag goes (the local test image keeps the layers): the nodes
	// have to pull it by this name.
	if err := rt.RemoveImage(ctx, remote); err != nil {
		t.Fatal(err)
	}
	c := dockerCluster(t, rt, 2)
	const host = "web.example.test"

	spec := webSpec(remote)
	spec.Replicas, spec.MaxParallel = 2, 2
	first := c.deploy(spec)
	if first.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy from the registry: %s: %s", first.Status, first.Reason)
	}
	if img, err := rt.InspectImage(ctx, remote); err != nil || img.Digest != pushed.Digest {
		t.Fatalf("after the deploy the engine has %s as %+v, %v; want it pulled (%s)", remote, img, err, pushed.Digest)
	}
	ins := instancesOf(c.leader().agent, "web")
	if len(ins) != 2 || ins[0].Node == ins[1].Node {
		t.Fatalf("instances %+v, want one on each node", ins)
	}
	for _, in := range ins {
		if in.ImageDigest != pushed.Digest {
			t.Fatalf("%s on %s runs %q, want the registry's digest %s", in.ID, in.Node, in.ImageDigest, pushed.Digest)
		}
	}
	waitServing(t, c.nodes, host, "v1")

	missing := webSpec(reg + "/shop/web:does-not-exist")
	missing.Replicas = 2
	d := c.deploy(missing)
	if d.Status != raftfsm.DeployFailed || !strings.Contains(d.Reason, "manifest unknown") || !strings.Contains(d.Reason, "does-not-exist") {
		t.Fatalf("deploy of a missing tag: %s %q, want failed with Docker's \"manifest unknown\"", d.Status, d.Reason)
	}
	t.Logf("the deploy of a missing tag failed as it should: %s", d.Reason)
	for _, in := range instancesOf(c.leader().agent, "web") {
		if in.DesiredGeneration != first.Generation || in.Generation != first.Generation {
			t.Fatalf("after the failed pull %s on %s wants generation %d and runs %d, want %d", in.ID, in.Node,
				in.DesiredGeneration, in.Generation, first.Generation)
		}
	}
	requireServing(t, c.nodes, host, "v1")
}

// TestRolloutBuildsFromLocalBase: local/base:latest, built on the engine
// FROM scratch with the test app, is what an uploaded context's
// `FROM local/base:latest` builds on. The context is uploaded to node-1
// and the roll-out starts on node-2, which fetches it from node-1 and
// builds it; both nodes then run the base's program with the context's ENV.
func TestRolloutBuildsFromLocalBase(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	ctx := context.Background()
	useLocalBase(t, rt)
	c := dockerCluster(t, rt, 2)

	marker := "from-base-" + runtimetest.RandomSuffix()
	info, err := c.nodes[0].agent.StoreContext(ctx, strings.NewReader(string(contextTar(t, map[string]string{
		"Dockerfile": "FROM " + BaseImage + "\nENV VERSION=" + marker + "\n",
	}))))
	if err != nil {
		t.Fatal(err)
	}
	built := buildTag(info.Digest, "")
	t.Cleanup(func() {
		c.stopAll()
		removeClusterContainers(t, rt, c)
		runtimetest.RemoveTestImage(t, rt, built)
	})
	spec := webSpec("")
	spec.Build = info.Digest
	spec.Replicas, spec.Nodes = 2, []string{"node-2", "node-1"} // slot 0, the first one rolled, on the node without the context
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy of a build FROM %s: %s: %s", BaseImage, d.Status, d.Reason)
	}
	waitServing(t, c.nodes, "web.example.test", marker)
	ins := instancesOf(c.leader().agent, "web")
	if len(ins) != 2 || ins[0].Node != "node-2" || ins[1].Node != "node-1" {
		t.Fatalf("instances %+v, want slot 0 on node-2 and slot 1 on node-1", ins)
	}
	c.leader().agent.View(func(s *raftfsm.State) {
		if bc := s.Contexts[info.Digest]; bc == nil || !slices.Contains(bc.Holders, "node-2") {
			t.Fatalf("the context's holders %+v: node-2 did not fetch it", bc)
		}
	})
	for _, in := range ins {
		if env := containerEnv(t, in.ContainerID); !contains(env, "VERSION="+marker) {
			t.Fatalf("%s's container on %s has the environment %v, want VERSION=%s", in.ID, in.Node, env, marker)
		}
	}
}

// useLocalBase builds BaseImage on rt's engine FROM scratch with the test
// app (its entrypoint and EXPOSE port). When the test ends it removes the
// image if it is still the one built here, and gives the name back to an
// image that had it before.
func useLocalBase(t *testing.T, rt *runtime.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prev, prevErr := rt.InspectImage(ctx, BaseImage)
	if _, err := rt.BuildFromBinary(ctx, runtimetest.TestAppBinary(t), BaseImage, []string{"/testapp"}, runtimetest.TestAppPort); err != nil {
		t.Fatalf("build %s: %v", BaseImage, err)
	}
	mine, err := rt.InspectImage(ctx, BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if now, err := rt.InspectImage(ctx, BaseImage); err != nil || now.ID != mine.ID {
			return // another test has built its own since
		}
		runtimetest.RemoveTestImage(t, rt, BaseImage)
		if prevErr != nil || prev.ID == mine.ID {
			return
		}
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			t.Errorf("give %s back to %s: %v", BaseImage, prev.ID, err)
			return
		}
		defer cli.Close()
		if err := cli.ImageTag(ctx, prev.ID, BaseImage); err != nil {
			t.Errorf("give %s back to %s: %v", BaseImage, prev.ID, err)
		}
	})
}

// TestStatefulMoveRestartsDependent: a web service uses a Redis-named
// stateful service on another node; when the stateful service is pinned to
// a third node and redeployed, it moves there, and the web service is
// restarted with REDIS_URL pointing at its new address, which answers.
func TestStatefulMoveRestartsDependent(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	img := runtimetest.BuildTestImage(t, rt, "kv", nil)
	redis := runtimetest.StartRegistry(t) + "/library/redis:7"
	runtimetest.PushImage(t, rt, img, redis)
	c := dockerCluster(t, rt, 3)
	ip := func(node string) string {
		for _, n := range c.nodes {
			if n.cfg.NodeID == node {
				return n.cfg.AdvertiseIP
			}
		}
		t.Fatalf("no node %s", node)
		return ""
	}

	cache := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "redis", Kind: raftfsm.KindStateful, Image: redis, Port: 6379,
		Nodes: []string{"node-1"}}
	if d := c.deploy(cache); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("stateful deploy: %s %s", d.Status, d.Reason)
	}
	// The stateful containers' volumes outlive their containers: remove
	// them once the agents and containers are gone.
	var volumes []string
	leader := c.leader().agent
	leader.View(func(s *raftfsm.State) {
		for _, svc := range s.Services {
			if svc.Name == "redis" {
				for _, n := range c.nodes {
					volumes = append(volumes, volumeName(n.agent.containerBase(*svc, 0)))
				}
			}
		}
	})
	t.Cleanup(func() {
		c.stopAll()
		removeClusterContainers(t, rt, c)
		for _, v := range volumes {
			if err := rt.RemoveVolume(context.Background(), v); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	web := webSpec(img)
	web.Uses, web.Nodes = []string{"redis"}, []string{"node-3"}
	if d := c.deploy(web); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("web deploy: %s %s", d.Status, d.Reason)
	}
	before := instancesOf(leader, "web")[0]
	if env, want := containerEnv(t, before.ContainerID), "REDIS_URL=redis://"+ip("node-1")+":6379"; !contains(env, want) {
		t.Fatalf("web's environment %v lacks %s", env, want)
	}

	cache.Nodes = []string{"node-2"}
	if d := c.deploy(cache); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("stateful redeploy on node-2: %s %s", d.Status, d.Reason)
	}
	if in := instancesOf(leader, "redis")[0]; in.Node != "node-2" {
		t.Fatalf("the stateful instance is on %s, want node-2", in.Node)
	}
	want := "REDIS_URL=redis://" + ip("node-2") + ":6379"
	var after raftfsm.Instance
	waitFor(t, 30*time.Second, "web to be restarted with "+want, func() bool {
		after = instancesOf(leader, "web")[0]
		return after.ContainerID != before.ContainerID && after.Phase == raftfsm.PhaseReady && contains(containerEnv(t, after.ContainerID), want)
	})
	if code, _ := runtimetest.HTTPGet("http://" + ip("node-2") + ":6379/health"); code != 200 {
		t.Fatalf("the injected address answers %d", code)
	}
	waitFor(t, 30*time.Second, "the stateful container to leave node-1", func() bool {
		list, err := rt.List(context.Background(), c.nodes[0].agent.ownLabels(map[string]string{runtime.LabelService: "redis"}))
		return err == nil && len(list) == 0
	})
	if code, _, err := edgeGet(c.nodes[2], "web.example.test", "/"); err != nil || code != 200 {
		t.Fatalf("web after the move: %d %v", code, err)
	}
}
