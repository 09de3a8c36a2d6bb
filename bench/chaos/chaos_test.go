//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestChaosBounded is the short run of `scripts/dev.sh test`: 3 agents,
// every fault once.
func TestChaosBounded(t *testing.T) {
	runChaos(t, DefaultConfig())
}

// TestChaosFull is bench/chaos.sh's run: 5 agents, several rounds.
func TestChaosFull(t *testing.T) {
	if os.Getenv("DROPMESH_CHAOS_FULL") == "" {
		t.Skip("the full chaos run is bench/chaos.sh (DROPMESH_CHAOS_FULL=1)")
	}
	cfg := FullConfig()
	if v := os.Getenv("DROPMESH_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("DROPMESH_CHAOS_ROUNDS=%q: %v", v, err)
		}
		cfg.Rounds = n
	}
	runChaos(t, cfg)
}

func runChaos(t *testing.T, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	if dl, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), dl.Add(-time.Minute))
	}
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DROPMESH_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DROPMESH_CHAOS_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("chaos run: %d nodes, %d rounds, %d writers x %d services, seed %d (DROPMESH_CHAOS_SEED repeats the choices)",
		cfg.Nodes, cfg.Rounds, cfg.Workers, cfg.Services, seed)

	h := NewHistory()
	rt := runtimetest.NewTestRuntime(t)
	images := []string{
		runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"}),
		runtimetest.BuildTestImage(t, rt, "v2", map[string]string{"VERSION": "v2"}),
	}
	c := NewCluster(t, cfg, h)

	sampler := StartSampler(ctx, c, h)
	defer sampler.Stop()
	work := StartWorkload(ctx, c, h, images, seed)
	defer work.Stop()
	reg, regErr := StartRegister(ctx, c, 4, seed)
	if regErr != nil {
		t.Fatal(regErr)
	}
	defer reg.Stop()
	if err := waitUntil(ctx, time.Now().Add(cfg.FaultFor)); err != nil {
		t.Fatal(err)
	}

	runner := NewRunner(c, h)
	var runErr error
	for r := 0; r < cfg.Rounds && runErr == nil; r++ {
		for _, f := range Faults() {
			if runErr = runner.Run(ctx, f, r); runErr != nil {
				break
			}
		}
		if runErr == nil {
			runErr = runner.RestartAll(ctx)
		}
	}
	work.Stop()
	reg.Stop()
	c.logf("faults done; writers stopped")
	if runErr != nil {
		printRecord(t, h)
		t.Fatal(runErr)
	}

	// After the heal: wait for the agents to converge, then check.
	var (
		svcs       []raftfsm.Service
		containers []Container
		cloud      *Violation
		ctrs       *Violation
	)
	err := c.poll(ctx, 2*cfg.SettleTimeout, "the containers and DNS to match the state", func() error {
		var ins []raftfsm.Instance
		var err error
		if svcs, ins, err = c.State(ctx); err != nil {
			return err
		}
		if containers, err = c.Containers(ctx); err != nil {
			return err
		}
		ctrs = CheckContainers(ins, containers)
		cloud = CheckCloud(c.FakeState(), cfg.Nodes, servedHosts(svcs, ins))
		if ctrs != nil || cloud != nil {
			return fmt.Errorf("%d container problems, %d cloud problems", problems(ctrs), problems(cloud))
		}
		return nil
	})
	c.logf("converged: %v", err)
	sampler.Stop()

	final, err := FinalKeys(ctx, c)
	if err != nil {
		t.Fatalf("read the keys after the heal: %v", err)
	}
	for _, s := range svcs {
		final[s.Project+"/"+s.Env+"/"+s.Name] = s.Generation
	}
	summarize(t, h, runner, cfg)
	for _, v := range []*Violation{
		CheckLeaders(h, h.Samples()),
		CheckAcknowledged(h, h.Ops(), final),
		CheckRegister(reg),
		CheckReads(h, h.Ops()),
		ctrs,
		cloud,
		CheckFailover(runner.Recoveries, cfg.FailoverLimit),
		CheckMembership(runner.Membership, cfg.MembershipGrace),
	} {
		if v != nil {
			t.Error(v)
		}
	}
	if t.Failed() {
		printRecord(t, h)
	}
}

// servedHosts are the hosts DNS records may exist for: those of services
// with a ready instance, and the UI's.
func servedHosts(svcs []raftfsm.Service, ins []raftfsm.Instance) []string {
	ready := map[string]bool{}
	for _, in := range ins {
		if in.Phase == raftfsm.PhaseReady {
			ready[in.Service] = true
		}
	}
	hosts := []string{"mesh." + Zone}
	for _, s := range svcs {
		if ready[s.Key] {
			hosts = append(hosts, s.Spec.Hosts...)
		}
	}
	return hosts
}

func problems(v *Violation) int {
	if v == nil {
		return 0
	}
	return len(v.Problems)
}

// summarize prints the figures of the run.
func summarize(t *testing.T, h *History, r *Runner, cfg Config) {
	outcomes := map[Outcome]int{}
	kinds := map[OpKind]int{}
	var first, last time.Time
	for _, op := range h.Ops() {
		kinds[op.Kind]++
		if op.Kind == OpRead {
			continue
		}
		outcomes[op.Outcome]++
		if first.IsZero() || op.Start.Before(first) {
			first = op.Start
		}
		if op.End.After(last) {
			last = op.End
		}
	}
	writes := len(h.Ops()) - kinds[OpRead]
	if span := last.Sub(first).Seconds(); span > 0 {
		t.Logf("%d writes in %.0f s: %.1f writes/s (%d deploys, %d undeploys, %d puts, %d deletes); %d reads",
			writes, span, float64(writes)/span, kinds[OpDeploy], kinds[OpUndeploy], kinds[OpPut], kinds[OpDelete], kinds[OpRead])
	}
	terms := map[uint64]bool{}
	for _, s := range h.Samples() {
		if s.Err == "" && s.Leader == s.Node {
			terms[s.Term] = true
		}
	}
	t.Logf("%d writes: %d ok, %d failed, %d unknown; %d samples saw %d terms with a leader",
		writes, outcomes[OutcomeOK], outcomes[OutcomeFailed], outcomes[OutcomeUnknown], len(h.Samples()), len(terms))
	var b strings.Builder
	fmt.Fprintf(&b, "write accepted / UI answering again after each fault (goal %s, limit %s):\n", cfg.FailoverGoal, cfg.FailoverLimit)
	var worst, worstUI time.Duration
	for _, rec := range r.Recoveries {
		mark := "met"
		if rec.Took < 0 || rec.Took > cfg.FailoverGoal || rec.UITook < 0 || rec.UITook > cfg.FailoverGoal {
			mark = "MISSED"
		}
		worst, worstUI = max(worst, rec.Took), max(worstUI, rec.UITook)
		fmt.Fprintf(&b, "  %-20s %-40s write %8s  ui %8s  goal %s\n", rec.Fault, rec.Target, rec.Took.Round(time.Millisecond), rec.UITook.Round(time.Millisecond), mark)
	}
	fmt.Fprintf(&b, "  worst: write %s, ui %s", worst.Round(time.Millisecond), worstUI.Round(time.Millisecond))
	t.Log(b.String())
}

// printRecord prints the faults and the operations of the run.
func printRecord(t *testing.T, h *History) {
	var lines []string
	for _, f := range h.Faults() {
		lines = append(lines, h.FormatFault(f))
	}
	for _, op := range h.Ops() {
		lines = append(lines, h.FormatOp(op))
	}
	slices.Sort(lines) // by time: every line starts with it
	t.Logf("the record:\n%s", strings.Join(lines, "\n"))
}
