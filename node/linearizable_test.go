package node

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/bench/lincheck"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// linDuration is how long TestLinearizableReads runs its workload; the
// longer run in bench/ (bench/linearizability.sh) raises it.
var linDuration = flag.Duration("lin.duration", 12*time.Second, "how long the linearizability workload runs")

// freezableLogs stalls a node's raft log writes while frozen (a disk that
// hangs): writes queue, heartbeats and reads go on.
type freezableLogs struct {
	raft.LogStore
	mu   sync.Mutex
	gate chan struct{}
}

func (f *freezableLogs) wait() {
	f.mu.Lock()
	ch := f.gate
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (f *freezableLogs) StoreLog(l *raft.Log) error { f.wait(); return f.LogStore.StoreLog(l) }

func (f *freezableLogs) StoreLogs(ls []*raft.Log) error { f.wait(); return f.LogStore.StoreLogs(ls) }

func (f *freezableLogs) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate == nil {
		f.gate = make(chan struct{})
	}
}

func (f *freezableLogs) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// servedIndex tracks, per node, the highest state index it answered with,
// and what it had served before its last restart: a node must never answer
// from an older state than it served before it stopped.
type servedIndex struct {
	mu     sync.Mutex
	served map[string]uint64
	floor  map[string]uint64
	errs   []string
}

func (s *servedIndex) answered(node string, idx uint64, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < s.floor[node] {
		s.errs = append(s.errs, fmt.Sprintf("%s answered a %s read from index %d after serving %d before its restart", node, how, idx, s.floor[node]))
	}
	s.served[node] = max(s.served[node], idx)
}

func (s *servedIndex) restarted(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor[node] = s.served[node]
}

// TestLinearizableReads runs concurrent clients against random nodes of a
// three-node cluster (real agents, real sockets, the HTTP API) while the
// leader is crashed and restarted, stopped and restarted, and has its disk
// frozen; the history of writes and reads of one settings field must be
// linearizable, for default reads and for ?index= reads. A restarted node
// must never answer from an older state than it served before.
func TestLinearizableReads(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster under faults; not in -short")
	}
	var (
		gatesMu sync.Mutex
		gates   = map[string]*freezableLogs{}
	)
	c := startCluster(t, 3, func(i int, cfg *Config) {
		id := cfg.NodeID
		cfg.storeHook = func(sc *raftfsm.StoreConfig) {
			sc.WrapLogs = func(l raft.LogStore) raft.LogStore {
				g := &freezableLogs{LogStore: l}
				gatesMu.Lock()
				gates[id] = g
				gatesMu.Unlock()
				return g
			}
		}
	})
	t.Cleanup(func() {
		gatesMu.Lock()
		defer gatesMu.Unlock()
		for _, g := range gates {
			g.thaw()
		}
	})
	key := c.nodes[0].agent.Keys().APIKey
	addrs := map[string]string{}
	for _, n := range c.nodes {
		addrs[n.cfg.NodeID] = n.cfg.addr(n.cfg.APIPort)
	}
	newClient := func(node string) *apiclient.Client {
		cl, err := apiclient.New(apiclient.Config{Addrs: []string{addrs[node]}, APIKey: key, CACert: c.nodes[0].agent.ClusterCAPEM(), Timeout: 4 * time.Second, RetryFor: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	initial := "lin-init"
	if err := newClient(c.leader().cfg.NodeID).UpdateSettings(t.Context(), control.SettingsRequest{DropletSize: &initial}); err != nil {
		t.Fatal(err)
	}

	h := &lincheck.History{}
	served := &servedIndex{served: map[string]uint64{}, floor: map[string]uint64{}}
	ctx, stop := context.WithTimeout(context.Background(), *linDuration)
	defer stop()
	var wg sync.WaitGroup
	ids := []string{c.nodes[0].cfg.NodeID, c.nodes[1].cfg.NodeID, c.nodes[2].cfg.NodeID}
	const clients = 6
	for client := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 18))
			// writers write and then read with ?index= (their own writes'
			// index, added by the client); readers only make default reads.
			writers, readers := map[string]*apiclient.Client{}, map[string]*apiclient.Client{}
			for _, id := range ids {
				writers[id], readers[id] = newClient(id), newClient(id)
			}
			for seq := 0; ctx.Err() == nil; seq++ {
				node := ids[rng.IntN(len(ids))]
				opCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := time.Now()
				switch p := rng.IntN(10); {
				case p < 4:
					v := fmt.Sprintf("v-%d-%d", client, seq)
					err := writers[node].UpdateSettings(opCtx, control.SettingsRequest{DropletSize: &v})
					op := lincheck.Op{Client: client, Write: true, Value: v, Call: call, Return: time.Now()}
					switch code := apiclient.Code(err); {
					case err == nil:
					case code == control.CodeNotLeader || code == control.CodeNoLeader || code == control.CodeInvalid:
						cancel()
						continue // refused before it reached the log
					default:
						op.Unknown = true // may or may not have been applied
					}
					h.Add(op)
				case p < 9:
					cl, how := readers[node], "default"
					if p >= 7 {
						cl, how = writers[node], "index"
					}
					var m apiclient.Meta
					s, err := cl.Settings(opCtx, apiclient.StoreMeta(&m))
					if err == nil {
						h.Add(lincheck.Op{Client: client, Value: s.DropletSize, Call: call, Return: time.Now()})
						served.answered(node, m.Index, how)
					}
				default:
					var m apiclient.Meta
					if _, err := readers[node].Settings(opCtx, apiclient.Stale(), apiclient.StoreMeta(&m)); err == nil {
						served.answered(node, m.Index, "stale")
					}
				}
				cancel()
			}
		}()
	}

	// The faults, one after another, on whoever leads at the time.
	pause := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	faults := []string{}
	for round := 0; pause(1500 * time.Millisecond); round++ {
		leader := c.leader()
		id := leader.cfg.NodeID
		switch round % 3 {
		case 0, 2:
			crash := round%3 == 0
			faults = append(faults, fmt.Sprintf("%s %s", map[bool]string{true: "crash", false: "stop"}[crash], id))
			c.stop(leader, crash)
			served.restarted(id)
			pause(time.Second)
			c.start(leader)
		case 1:
			faults = append(faults, "freeze the disk of "+id)
			gatesMu.Lock()
			g := gates[id]
			gatesMu.Unlock()
			g.freeze()
			pause(1500 * time.Millisecond)
			g.thaw()
		}
	}
	wg.Wait()
	t.Logf("faults: %v", faults)

	served.mu.Lock()
	for _, e := range served.errs {
		t.Error(e)
	}
	served.mu.Unlock()
	res := lincheck.Check(h.Ops(), initial, time.Minute)
	t.Logf("%d reads, %d writes: %s", res.Reads, res.Writes, res.Verdict)
	if res.Reads < 50 || res.Writes < 50 || len(faults) < 3 {
		t.Fatalf("a history too thin to mean anything: %d reads, %d writes, faults %v", res.Reads, res.Writes, faults)
	}
	if !res.OK() {
		t.Fatalf("the history is %s, not linearizable (see %s)", res.Verdict, res.Visualization)
	}
}
