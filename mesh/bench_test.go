package mesh

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Benchmarks: real memberlist over UDP/TCP on 127.0.0.0/8 in one process
// (the 50- and 100-member ones in memory, see BenchmarkMetaConvergence).
// Timings can be overridden to compare settings (see TUNING.md); these are
// the variables with DefaultConfig's values:
// MESH_PROBE=100ms MESH_PROBE_TIMEOUT=40ms MESH_SUSPICION=4 MESH_SUSPICION_MAX=3
// MESH_GOSSIP=50ms MESH_GOSSIP_NODES=4 MESH_RETRANSMIT=4 MESH_STATE=100ms.
// MESH_BIG_PROBE (default 1s) is the probe interval of the 50- and
// 100-member clusters.

// benchTweak applies the MESH_* overrides.
func benchTweak(b testing.TB) func(*Config) {
	return func(c *Config) {
		dur := func(env string, dst *time.Duration) {
			if v := os.Getenv(env); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					b.Fatalf("%s: %v", env, err)
				}
				*dst = d
			}
		}
		num := func(env string, dst *int) {
			if v := os.Getenv(env); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					b.Fatalf("%s: %v", env, err)
				}
				*dst = n
			}
		}
		dur("MESH_PROBE", &c.ProbeInterval)
		dur("MESH_PROBE_TIMEOUT", &c.ProbeTimeout)
		dur("MESH_GOSSIP", &c.GossipInterval)
		dur("MESH_STATE", &c.StateInterval)
		num("MESH_SUSPICION", &c.SuspicionMult)
		num("MESH_SUSPICION_MAX", &c.SuspicionMaxTimeoutMult)
		num("MESH_GOSSIP_NODES", &c.GossipNodes)
		num("MESH_RETRANSMIT", &c.RetransmitMult)
		c.Logger = testLogger(b)
	}
}

// percentile returns the p-th percentile (0-100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFailureDetection: kill one node (Shutdown, no Leave) and time
// until every other node marks it dead; the node is restarted between
// iterations. Reports mean, p50, p95 and max in ms.
func BenchmarkFailureDetection(b *testing.B) {
	for i, n := range []int{3, 5, 10} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c := startCluster(b, 40+i, n, benchTweak(b))
			var times []time.Duration
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				victim := 1 + it%(n-1)
				others := slices.Concat(c.meshes[:victim], c.meshes[victim+1:])
				id := c.meshes[victim].cfg.NodeID
				addr := c.meshes[victim].self
				start := time.Now()
				_ = c.meshes[victim].Shutdown()
				waitFor(b, 20*time.Second, func() bool { return allSee(others, id, StatusDead) }, "%s dead everywhere", id)
				times = append(times, time.Since(start))

				b.StopTimer()
				cfg := c.cfgs[victim]
				cfg.BindPort = portOf(b, addr)
				m := startMesh(b, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, err := m.Join(ctx, []string{others[0].self}); err != nil {
					b.Fatal(err)
				}
				cancel()
				c.meshes[victim] = m
				c.waitAllAlive(c.convergeTimeout())
				b.StartTimer()
			}
			b.StopTimer()
			reportDurations(b, times, "dead")
		})
	}
}

// reportDurations reports mean, p50, p95 and max of times as name-*-ms.
func reportDurations(b *testing.B, times []time.Duration, name string) {
	slices.Sort(times)
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(sum/time.Duration(len(times))), name+"-mean-ms")
	b.ReportMetric(ms(percentile(times, 50)), name+"-p50-ms")
	b.ReportMetric(ms(percentile(times, 95)), name+"-p95-ms")
	b.ReportMetric(ms(times[len(times)-1]), name+"-max-ms")
}

// BenchmarkMetaConvergence: one member updates its metadata; time until 100%
// of the other members see it (each mesh watched through Changed): all-*
// over the iterations, p99members-p50 the median time to 99% of them, and
// member-p99 and member-p99.99 the percentiles of every single arrival
// pooled over the iterations (the Serf model's measure; p99.99 means
// something from 10,000 arrivals on, e.g. 100 members x 100 iterations).
// late-members counts arrivals after lateArrival: members that every gossip
// copy missed, reached by push/pull instead. 10 members run
// on real UDP/TCP sockets; 50 and 100 run on an in-memory network
// (memNetwork), because 100 agents' worth of probing, encryption and
// syscalls do not fit in one process on two shared cores (at 50 on sockets
// the process starves and members falsely die). Gossip settings are the
// defaults (or the MESH_* overrides); at 50 and 100 probing is slowed to
// MESH_BIG_PROBE (default 1 s) and state reads to 2 s to fit the CPU, which
// only removes the broadcasts that ride on probe packets, so the figures are
// conservative.
func BenchmarkMetaConvergence(b *testing.B) {
	for i, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			tweak := benchTweak(b)
			if n >= 50 {
				var mn memNetwork
				probe := time.Second
				if v := os.Getenv("MESH_BIG_PROBE"); v != "" {
					d, err := time.ParseDuration(v)
					if err != nil {
						b.Fatalf("MESH_BIG_PROBE: %v", err)
					}
					probe = d
				}
				base := tweak
				tweak = func(c *Config) {
					base(c)
					c.Transport = mn.newTransport(b, net.JoinHostPort(c.BindAddr, "7946"))
					c.ProbeInterval, c.ProbeTimeout, c.StateInterval = probe, probe/2, 2*time.Second
				}
			}
			c := joinCluster(b, 50+i, n, tweak)
			if n >= 50 {
				c.waitAllKnown(c.convergeTimeout())
			} else {
				c.waitAllAlive(c.convergeTimeout())
			}
			var times, p99s, pooled []time.Duration
			late := 0
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				src := c.meshes[it%n]
				others := slices.Concat(c.meshes[:it%n], c.meshes[it%n+1:])
				meta := src.cfg.Meta
				meta.Version = fmt.Sprintf("bench-%d", it)
				arrivals := make([]time.Duration, len(others))
				var wg sync.WaitGroup
				// A member that all the gossip copies missed gets the
				// update from the next push/pull: allow for one.
				ctx, cancel := context.WithTimeout(context.Background(), c.convergeTimeout())
				start := time.Now()
				for j, m := range others {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							ch := m.Changed()
							if mem, _ := m.Member(src.cfg.NodeID); mem.Meta.Version == meta.Version {
								arrivals[j] = time.Since(start)
								return
							}
							select {
							case <-ch:
							case <-ctx.Done():
								arrivals[j] = -1
								return
							}
						}
					}()
				}
				if err := src.UpdateMeta(ctx, meta); err != nil {
					b.Fatal(err)
				}
				wg.Wait()
				cancel()
				slices.Sort(arrivals)
				if arrivals[0] < 0 {
					b.Fatalf("iteration %d: some members never saw the update", it)
				}
				for _, a := range arrivals {
					if a > lateArrival {
						late++
					}
				}
				pooled = append(pooled, arrivals...)
				times = append(times, arrivals[len(arrivals)-1])
				p99s = append(p99s, percentile(arrivals, 99))
			}
			b.StopTimer()
			reportDurations(b, times, "all")
			slices.Sort(p99s)
			b.ReportMetric(ms(percentile(p99s, 50)), "p99members-p50-ms")
			slices.Sort(pooled)
			b.ReportMetric(ms(percentile(pooled, 99)), "member-p99-ms")
			b.ReportMetric(ms(percentile(pooled, 99.99)), "member-p99.99-ms")
			b.ReportMetric(float64(late), "late-members")
		})
	}
}

// lateArrival: a member that sees an update later than this got it from
// push/pull, not gossip (which is over within a few hundred ms).
const lateArrival = time.Second

// BenchmarkStateRead: one read of the local state table (states.go) at 10
// and 100 members, over real loopback TCP: the cost of StateInterval. At 100
// the members probe every second instead of every 100 ms: the read's cost
// does not depend on the probe rate, but 100 members probing ten times a
// second in one process starve two cores (probes and TCP fallback pings
// time out, and memberlist logs the abandoned connections as streams
// "with unacceptable label"), which is not what a read costs.
func BenchmarkStateRead(b *testing.B) {
	for i, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			c := joinCluster(b, 60+i, n, func(cfg *Config) {
				benchTweak(b)(cfg)
				cfg.StateInterval = time.Hour // only the benchmark reads
				if n >= 50 {
					cfg.ProbeInterval, cfg.ProbeTimeout = time.Second, 500*time.Millisecond
				}
			})
			// Without state reads a refuted suspicion stays visible, so
			// wait for every member to be known rather than alive.
			c.waitAllKnown(c.convergeTimeout())
			m := c.meshes[0]
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				rows, err := m.reader.read(m.self)
				if err != nil || len(rows) != n {
					b.Fatalf("read: %d rows, %v", len(rows), err)
				}
			}
		})
	}
}
