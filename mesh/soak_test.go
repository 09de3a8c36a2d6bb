package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs MESH_SOAK_NODES (default 5) mesh nodes, each in its own
// process like real agents, for MESH_SOAK (e.g. 10m) with MESH_SOAK_BURNERS
// (default 2) busy-loop processes competing for the CPUs. It fails on any
// false death and reports suspicions (refuted), the nodes' worst health
// score and the worst scheduling stall a node saw. Skipped unless MESH_SOAK
// is set. Timings can be overridden as in the benchmarks (MESH_PROBE, ...).
//
//	MESH_SOAK=10m go test ./mesh -run 'TestSoak$' -v -timeout 30m
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("MESH_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set MESH_SOAK=<duration> to run the soak test")
	}
	nodes := envInt(t, "MESH_SOAK_NODES", 5)
	burners := envInt(t, "MESH_SOAK_BURNERS", 2)

	var mu sync.Mutex
	suspects, deaths := map[string]int{}, map[string]int{}
	maxScore, maxStall := 0, time.Duration(0)
	refutes := map[string]int{} // by node: suspicions that reached the accused
	var rttP99s []time.Duration // one per node-second with probes
	maxRTT, probes := time.Duration(0), 0
	var wg sync.WaitGroup
	var seed string
	for i := range nodes {
		id := fmt.Sprintf("s%d", i)
		cmd := exec.Command(os.Args[0], "-test.run=^TestSoakNode$")
		cmd.Env = append(os.Environ(), "MESH_SOAK_CHILD="+id, "MESH_SOAK_IP="+nodeIP(70, i), "MESH_SOAK_JOIN="+seed)
		stdin, err := cmd.StdinPipe() // the child exits when this closes
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
		lines := bufio.NewScanner(out)
		if !lines.Scan() {
			t.Fatalf("%s printed no address", id)
		}
		if seed == "" {
			seed = strings.TrimPrefix(lines.Text(), "addr ")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lines.Scan() {
				var r soakReport
				if json.Unmarshal(lines.Bytes(), &r) != nil {
					continue
				}
				mu.Lock()
				switch r.Type {
				case "suspect":
					suspects[id+">"+r.Member]++
				case "dead":
					deaths[id+">"+r.Member]++
				case "health":
					maxScore = max(maxScore, r.Score)
					maxStall = max(maxStall, r.Stall)
					refutes[id] = r.Refutes
					if r.Probes > 0 {
						probes += r.Probes
						rttP99s = append(rttP99s, r.RTTP99)
						maxRTT = max(maxRTT, r.RTTMax)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for range burners {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start burner: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	cfg := DefaultConfig()
	benchTweak(t)(&cfg)
	t.Logf("soak: %d node processes, %d burners, %v; probe %v/%v, suspicion %dx (max %dx); load %s",
		nodes, burners, d, cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult, cfg.SuspicionMaxTimeoutMult, loadavg())
	timer := time.NewTimer(d)
	<-timer.C
	mu.Lock()
	defer mu.Unlock()
	var ns, nd int
	for _, n := range suspects {
		ns += n
	}
	for k, n := range deaths {
		nd += n
		t.Errorf("false positive: %s declared dead %d times", k, n)
	}
	nr := 0
	for _, n := range refutes {
		nr += n
	}
	slices.Sort(rttP99s)
	t.Logf("soak done: %d suspicions seen (%d refutations by the accused), %d false deaths, max health score %d, max stall %v; "+
		"%d probes answered in time, rtt p99 per node-second: median %v, worst %v; max rtt %v; load %s",
		ns, nr, nd, maxScore, maxStall, probes, percentile(rttP99s, 50), percentile(rttP99s, 100), maxRTT, loadavg())
}

// soakReport is one line a soak node prints.
type soakReport struct {
	Type   string        `json:"type"`
	Member string        `json:"member,omitempty"`
	Score  int           `json:"score,omitempty"`
	Stall  time.Duration `json:"stall,omitempty"`
	// Refutes counts, since the start, the suspect and dead messages about
	// this node that it refuted (memberlist logs each).
	Refutes int `json:"refutes,omitempty"`
	// Probes, RTTP99 and RTTMax describe the direct probes of the last
	// second that were answered within the probe timeout (OnProbeRTT).
	Probes int           `json:"probes,omitempty"`
	RTTP99 time.Duration `json:"rtt_p99,omitempty"`
	RTTMax time.Duration `json:"rtt_max,omitempty"`
}

// refuteCounter is a slog handler that counts memberlist's "Refuting a
// suspect/dead message" lines before passing records on.
type refuteCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h refuteCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Refuting a suspect message") || strings.HasPrefix(r.Message, "Refuting a dead message") {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h refuteCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return refuteCounter{h.Handler.WithAttrs(as), h.n}
}

func (h refuteCounter) WithGroup(name string) slog.Handler {
	return refuteCounter{h.Handler.WithGroup(name), h.n}
}

// TestSoakNode is one soak node: a child process of TestSoak. It prints its
// gossip address, then one JSON line per suspect or dead event and a health
// line (score, worst timer stall) every second, until stdin closes.
func TestSoakNode(t *testing.T) {
	id := os.Getenv("MESH_SOAK_CHILD")
	if id == "" {
		t.Skip("child process of TestSoak")
	}
	cfg := testConfig(t, id, os.Getenv("MESH_SOAK_IP"))
	benchTweak(t)(&cfg)
	var refutes atomic.Int64
	cfg.Logger = slog.New(refuteCounter{testLogger(t).Handler(), &refutes})
	var rttMu sync.Mutex
	var rtts []time.Duration
	cfg.OnProbeRTT = func(_ string, rtt time.Duration) {
		rttMu.Lock()
		rtts = append(rtts, rtt)
		rttMu.Unlock()
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	fmt.Println("addr " + m.self)
	if join := os.Getenv("MESH_SOAK_JOIN"); join != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := m.Join(ctx, []string{join}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(10 * time.Millisecond) // stall probe
	defer tick.Stop()
	last, worst, n := time.Now(), time.Duration(0), 0
	for {
		select {
		case <-stdinClosed:
			return
		case ev, ok := <-m.Events():
			if !ok {
				return
			}
			if ev.Type == EventSuspect || ev.Type == EventDead {
				_ = enc.Encode(soakReport{Type: ev.Type.String(), Member: ev.Member.ID})
			}
		case now := <-tick.C:
			worst = max(worst, now.Sub(last)-10*time.Millisecond)
			last = now
			if n++; n%100 == 0 {
				rttMu.Lock()
				second := rtts
				rtts = nil
				rttMu.Unlock()
				slices.Sort(second)
				_ = enc.Encode(soakReport{Type: "health", Score: m.HealthScore(), Stall: worst, Refutes: int(refutes.Load()),
					Probes: len(second), RTTP99: percentile(second, 99), RTTMax: percentile(second, 100)})
				worst = 0
			}
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// loadavg returns /proc/loadavg's first three fields, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return fmt.Sprintf("%s %s %s", f[0], f[1], f[2])
}
