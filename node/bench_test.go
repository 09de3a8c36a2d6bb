package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/leader/rollout"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Benchmarks of whole agents: seconds per operation, so run them with a
// fixed count (-benchtime=10x), as bench/run.sh does. Both report
// percentiles of the timed part only and 0 ns/op, which would only repeat
// them.

// benchIPPrefix puts the benchmarks' agents on loopback addresses of their
// own: the test suite's (testIPPrefix) use fixed ports, and a benchmark may
// run while `go test ./node` does.
const benchIPPrefix = "127.0.142."

// benchAddrs moves agent i of a benchmark cluster to benchIPPrefix.
func benchAddrs(i int, cfg *Config) {
	ip := fmt.Sprintf("%s%d", benchIPPrefix, i+1)
	cfg.BindIP, cfg.AdvertiseIP, cfg.PublicIP = ip, ip, ip
}

// BenchmarkFailover crashes the leader of a 3-agent cluster (no leadership
// transfer, no goodbye to the gossip) and times how long until a write is
// accepted again: from the start of the crash until a harmless event, sent
// through each survivor as agents send their reports (committed on the new
// leader, or forwarded to its API), is committed (failover-*). The
// survivors may elect a new leader while the crashed agent still shuts
// down (its raft connections end first: raftfsm's leaderloss.go), so the
// clock starts before the shutdown, which makes the figure an upper bound
// of a real kill's; after-stop-* is the same outage timed from the end of
// the shutdown, as this benchmark timed it before. The crashed agent
// restarts and is a voter again before the next iteration, outside the
// timer, so every iteration starts from three healthy voters.
func BenchmarkFailover(b *testing.B) {
	c := startCluster(b, 3, benchAddrs)
	waitThreeVoters(b, c.leader())
	var times, afterStop []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := c.leader()
		var survivors []*testNode
		for _, n := range c.nodes {
			if n != old {
				survivors = append(survivors, n)
			}
		}
		crashed := time.Now()
		c.stop(old, true)
		stopped := time.Now()
		waitFor(b, 30*time.Second, "a write accepted after the leader crashed", func() bool {
			return writeAccepted(survivors, i)
		})
		times, afterStop = append(times, time.Since(crashed)), append(afterStop, time.Since(stopped))

		b.StopTimer()
		next := c.leader()
		old.cfg.Bootstrap = false
		old.cfg.Join = []string{next.cfg.addr(next.cfg.GossipPort)}
		c.start(old)
		waitThreeVoters(b, next)
		b.StartTimer()
	}
	b.StopTimer()
	reportMs(b, times, "failover", "p50", "max")
	reportMs(b, afterStop, "after-stop", "p50", "max")
}

// writeAccepted tries one harmless write through each node and reports
// whether one of them was committed.
func writeAccepted(nodes []*testNode, iteration int) bool {
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := n.agent.report(ctx, &raftfsm.AppendEvent{At: time.Now().UTC(),
			Event: raftfsm.Event{Kind: "bench", Message: fmt.Sprintf("failover %d via %s", iteration, n.cfg.NodeID)}})
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}

// waitThreeVoters waits until leader sees node-1..3 alive and voting.
func waitThreeVoters(b *testing.B, leader *testNode) {
	b.Helper()
	waitFor(b, 30*time.Second, "three alive voters", func() bool {
		info, err := leader.agent.Cluster(context.Background())
		if err != nil {
			return false
		}
		roles := map[string]string{}
		for _, m := range info.Members {
			if m.Status == "alive" {
				roles[m.ID] = m.Raft
			}
		}
		return allVoters(roles, "node-1", "node-2", "node-3")
	})
}

// BenchmarkDeployLatency times a deploy end to end with the Docker runtime
// and the built-in proxy edge, on 1 node (1 replica) and on 3 nodes (3
// replicas rolled out in parallel, max_parallel 3): from submitting a new
// generation (a new VERSION each iteration, the image local and warm)
// until every instance is ready: started, healthy (three passing checks
// 100 ms apart, the start gate) and routed by the edge. Each iteration also
// times a raw `docker run` of the same image until its port answers
// (runtimetest.RawRun; on 3 nodes, three at once on the one Docker engine the
// agents share here), so the two figures come from the same moment:
// deploy-p50-ms against raw-p50-ms, overhead-p50-ms (their difference, the
// goal: under 300 ms) and x-raw (deploy over raw, the goal on 3 nodes:
// under 1.5). The old generation's drain and removal happen after the
// timer, and the next iteration starts once they are done.
func BenchmarkDeployLatency(b *testing.B) {
	skipWithoutDocker(b)
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchDeployLatency(b, nodes) })
	}
}

func benchDeployLatency(b *testing.B, nodes int) {
	rt := runtimetest.NewTestRuntime(b)
	c := startCluster(b, nodes, func(i int, cfg *Config) {
		benchAddrs(i, cfg)
		cfg.NoRuntime = false
	})
	leader := c.leader()
	img := runtimetest.BuildTestImage(b, rt, "bench", nil)
	spec := webSpec(img)
	spec.Replicas, spec.MaxParallel = nodes, nodes
	// Cleanups run last first: the agents and their containers go before the image.
	b.Cleanup(func() {
		c.stopAll()
		removeClusterContainers(b, rt, c)
	})
	spec.Vars = map[string]string{"VERSION": "warm"}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		b.Fatalf("first deploy %s: %s", d.Status, d.Reason)
	}
	waitSettled(b, rt, c, nodes)
	ctx := context.Background()
	var deploys, raws, overheads []time.Duration
	var ratios []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		raw := rawRuns(b, rt, img, nodes)

		leader = c.leader() // it may have moved since (a slow node's election)
		b.StartTimer()

		version := fmt.Sprintf("bench-%d", i)
		spec.Vars = map[string]string{"VERSION": version}
		start := time.Now()
		res, err := leader.agent.Deploy(ctx, control.DeployRequest{Spec: spec, Actor: "bench"})
		if err != nil {
			b.Fatalf("deploy %s: %v", version, err)
		}
		waitState(b, leader.agent, 90*time.Second, "generation "+fmt.Sprint(res.Generation)+" ready everywhere", func(s *raftfsm.State) bool {
			ready := 0
			for _, in := range s.ServiceInstances(res.Service) {
				if rollout.InstanceReady(in, res.Generation) {
					ready++
				}
			}
			return ready == nodes
		})
		took := time.Since(start)
		deploys, raws, overheads = append(deploys, took), append(raws, raw), append(overheads, took-raw)
		ratios = append(ratios, float64(took)/float64(raw))

		b.StopTimer()
		for _, n := range c.nodes {
			waitFor(b, 10*time.Second, "the edge of "+n.cfg.NodeID+" to serve "+version, func() bool {
				code, body, err := edgeGet(n, spec.Hosts[0], "/")
				return err == nil && code == 200 && strings.Contains(body, version)
			})
		}
		waitState(b, leader.agent, 60*time.Second, "deploy "+res.DeployID+" to finish", func(s *raftfsm.State) bool {
			p, ok := control.DeployProgressOf(s, res.DeployID)
			return ok && p.Done
		})
		waitSettled(b, rt, c, nodes)
		b.StartTimer()
	}
	b.StopTimer()
	reportMs(b, deploys, "deploy", "p50", "max")
	reportMs(b, raws, "raw", "p50")
	reportMs(b, overheads, "overhead", "p50", "max")
	slices.Sort(ratios)
	b.ReportMetric(ratios[(len(ratios)-1)/2], "x-raw")
}

// rawRuns times n raw `docker run`s of img started at once and returns
// how long the slowest took (what n nodes starting together would wait).
func rawRuns(b *testing.B, rt *runtime.Runtime, img string, n int) time.Duration {
	times := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { times[i] = runtimetest.RawRun(b, rt, img).Total() })
	}
	wg.Wait()
	return slices.Max(times)
}

// waitSettled waits until the cluster's agents have removed every old
// generation: one container per replica, so the next deploy does not queue
// behind a drain.
func waitSettled(b *testing.B, rt *runtime.Runtime, c *testCluster, replicas int) {
	b.Helper()
	waitFor(b, 60*time.Second, "the old generations to be removed", func() bool {
		list, err := rt.List(context.Background(), map[string]string{runtime.LabelManaged: "true"})
		if err != nil {
			return false
		}
		mine := 0
		for _, ctr := range list {
			for _, n := range c.nodes {
				if strings.Contains(ctr.Name, n.cfg.ContainerSuffix) {
					mine++
				}
			}
		}
		return mine == replicas
	})
}

// skipWithoutDocker skips a benchmark when no Docker engine answers (and
// fails it in CI).
func skipWithoutDocker(b *testing.B) {
	b.Helper()
	testkit.RequireDocker(b)
}

// waitState waits until cond holds on a's replica, woken by each change of
// the state rather than by a timer, so a benchmark sees the change at once.
func waitState(b *testing.B, a *Agent, timeout time.Duration, what string, cond func(s *raftfsm.State) bool) {
	b.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := a.Changed() // before reading: no change is missed
		ok := false
		a.View(func(s *raftfsm.State) { ok = cond(s) })
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			b.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// reportMs reports the given percentiles ("p50", "p95", "max") of times
// as name-<p>-ms, and 0 ns/op.
func reportMs(b *testing.B, times []time.Duration, name string, stats ...string) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	b.ReportMetric(0, "ns/op")
	for _, st := range stats {
		var d time.Duration
		switch st {
		case "max":
			d = times[len(times)-1]
		case "p50":
			d = times[(len(times)-1)/2]
		case "p95":
			d = times[(len(times)-1)*95/100]
		default:
			b.Fatalf("reportMs: unknown statistic %q", st)
		}
		b.ReportMetric(float64(d.Microseconds())/1000, name+"-"+st+"-ms")
	}
}
