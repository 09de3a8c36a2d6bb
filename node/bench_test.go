package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
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
// accepted again: from the moment the crashed agent is gone until a
// harmless event, sent through each survivor as agents send their reports
// (committed on the new leader, or forwarded to its API), is committed. The
// crashed agent restarts and is a voter again before the next iteration,
// outside the timer, so every iteration starts from three healthy voters.
func BenchmarkFailover(b *testing.B) {
	c := startCluster(b, 3, benchAddrs)
	waitThreeVoters(b, c.leader())
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := c.leader()
		var survivors []*testNode
		for _, n := range c.nodes {
			if n != old {
				survivors = append(survivors, n)
			}
		}
		// The agent's shutdown is not part of the outage a crash causes:
		// the clock starts once it is gone.
		b.StopTimer()
		c.stop(old, true)
		b.StartTimer()
		start := time.Now()
		waitFor(b, 30*time.Second, "a write accepted after the leader crashed", func() bool {
			return writeAccepted(survivors, i)
		})
		times = append(times, time.Since(start))

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

// BenchmarkDeployLatency times a deploy end to end on one agent with the
// Docker runtime and the built-in proxy edge: from submitting a new
// generation of a 1-replica service (a new VERSION each iteration, the
// image local and warm) until its instance is ready: started, healthy
// (three passing checks 100 ms apart, the start gate) and routed by the
// edge. Compare it with node/runtime's BenchmarkRawDockerRun, the same
// container started straight through the Docker API. The old generation's
// drain and removal happen after the timer, before the next iteration.
func BenchmarkDeployLatency(b *testing.B) {
	skipWithoutDocker(b)
	rt := runtime.NewTestRuntime(b)
	c := startCluster(b, 1, func(i int, cfg *Config) {
		benchAddrs(i, cfg)
		cfg.NoRuntime = false
	})
	n := c.nodes[0]
	spec := webSpec(runtime.BuildTestImage(b, rt, "bench", nil))
	// Cleanups run last first: the agent and its containers go before the image.
	b.Cleanup(func() {
		c.stopAll()
		removeClusterContainers(b, rt, c)
	})
	spec.Vars = map[string]string{"VERSION": "warm"}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		b.Fatalf("first deploy %s: %s", d.Status, d.Reason)
	}
	ctx := context.Background()
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		version := fmt.Sprintf("bench-%d", i)
		spec.Vars = map[string]string{"VERSION": version}
		start := time.Now()
		res, err := n.agent.Deploy(ctx, control.DeployRequest{Spec: spec, Actor: "bench"})
		if err != nil {
			b.Fatalf("deploy %s: %v", version, err)
		}
		waitState(b, n.agent, 90*time.Second, "generation "+fmt.Sprint(res.Generation)+" ready", func(s *raftfsm.State) bool {
			for _, in := range s.ServiceInstances(res.Service) {
				if instanceReady(in, res.Generation) {
					return true
				}
			}
			return false
		})
		times = append(times, time.Since(start))

		b.StopTimer()
		waitFor(b, 10*time.Second, "the edge to serve "+version, func() bool {
			code, body, err := edgeGet(n, spec.Hosts[0], "/")
			return err == nil && code == 200 && strings.Contains(body, version)
		})
		waitState(b, n.agent, 60*time.Second, "deploy "+res.DeployID+" to finish", func(s *raftfsm.State) bool {
			p, ok := control.DeployProgressOf(s, res.DeployID)
			return ok && p.Done
		})
		b.StartTimer()
	}
	b.StopTimer()
	reportMs(b, times, "deploy", "p50", "max")
}

// skipWithoutDocker skips a benchmark when no Docker engine answers.
func skipWithoutDocker(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, nil)
	if err != nil {
		b.Skipf("no Docker engine, skipping (needs Docker to start containers): %v", err)
	}
	_ = rt.Close()
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
