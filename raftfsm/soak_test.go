package raftfsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRaftSoak runs a 3-node cluster (raft over TCP on loopback, bolt
// stores, fsync) for RAFT_SOAK (e.g. 10m) under a steady stream of writes
// (RAFT_SOAK_RATE per second, default 200) while RAFT_SOAK_BURNERS (default
// 2) busy-loop processes compete for the CPUs. It fails if the leader ever
// changes (a new term) or a write fails, and reports the commit latency.
// Skipped unless RAFT_SOAK is set:
//
//	RAFT_SOAK=10m go test ./raftfsm -run 'TestRaftSoak$' -v -timeout 30m
func TestRaftSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("RAFT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set RAFT_SOAK=<duration> to run the raft soak test")
	}
	rate := soakEnvInt(t, "RAFT_SOAK_RATE", 200)
	burners := soakEnvInt(t, "RAFT_SOAK_BURNERS", 2)
	for range burners {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRaftSoakBurner$")
		cmd.Env = append(os.Environ(), "RAFT_SOAK_BURNER=1")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a burner: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}

	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	term := leader.store.Term()
	t.Logf("soak: %v, %d writes/s, %d burners; leader %s in term %d", d, rate, burners, leader.id, term)

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  atomic.Int64
		changes   []string
	)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the writers: one write every 1/rate, each in its own goroutine
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer wcancel()
				if _, err := leader.store.Apply(wctx, &AppendEvent{At: t0, Event: Event{Kind: "soak", Message: fmt.Sprint(i)}}); err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("write %d: %v", i, err)
					}
					return
				}
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				mu.Unlock()
			}()
		}
	}()
	go func() { // the watcher: every node keeps the same leader and term
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, n := range nodes {
				if got := n.store.Term(); got != term {
					mu.Lock()
					changes = append(changes, fmt.Sprintf("%s: term %d -> %d at %s", n.id, term, got, time.Now().Format(time.TimeOnly)))
					mu.Unlock()
					term = got
				}
			}
		}
	}()
	wg.Wait()

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(float64(len(latencies)-1)*p)]
	}
	t.Logf("soak: %d writes committed, %d failed; commit p50 %v, p99 %v, max %v",
		len(latencies), failures.Load(), pct(0.50), pct(0.99), pct(1))
	if len(changes) > 0 {
		t.Errorf("the leader changed %d times: %v", len(changes), changes)
	}
	if failures.Load() > 0 {
		t.Errorf("%d writes failed", failures.Load())
	}
}

// TestRaftSoakBurner is a soak burner: it spins until killed. It runs only
// as a child of TestRaftSoak.
func TestRaftSoakBurner(t *testing.T) {
	if os.Getenv("RAFT_SOAK_BURNER") == "" {
		t.Skip("a child of TestRaftSoak")
	}
	for x := 0; ; x++ {
		_ = x * x
	}
}

func soakEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}
