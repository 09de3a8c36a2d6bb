package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Violation is a check that failed: what is wrong, and the part of the
// history that shows it.
type Violation struct {
	Check    string
	Problems []string
	History  []string
}

func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "check %q failed:\n", v.Check)
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	if len(v.History) > 0 {
		b.WriteString("  history:\n")
		for _, l := range v.History {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}

// CheckLeaders checks that no term had two leaders: among the samples in
// which a node names itself the leader, each term has at most one node.
// (A follower's view may lag a term behind, so only self-reports count.)
func CheckLeaders(h *History, samples []Sample) *Violation {
	leaders := map[uint64][]string{}
	for _, s := range samples {
		if s.Err == "" && s.Leader != "" && s.Leader == s.Node && !slices.Contains(leaders[s.Term], s.Node) {
			leaders[s.Term] = append(leaders[s.Term], s.Node)
		}
	}
	v := &Violation{Check: "at most one leader per term"}
	var bad []uint64
	for term, ids := range leaders {
		if len(ids) > 1 {
			slices.Sort(ids)
			bad = append(bad, term)
			v.Problems = append(v.Problems, fmt.Sprintf("term %d had leaders %s", term, strings.Join(ids, " and ")))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(v.Problems)
	for _, s := range samples {
		if slices.Contains(bad, s.Term) {
			v.History = append(v.History, h.FormatSample(s))
		}
	}
	v.History = append(v.History, h.FaultLines()...)
	return v
}

// svcState is a service as the cluster may hold it.
type svcState struct {
	present bool
	gen     int64
}

func (s svcState) String() string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("generation %d", s.gen)
}

// apply is the effect of one write on a service or a key: a deploy adds a
// generation, a put sets the key's value (its gen), an undeploy or a
// delete removes it.
func (s svcState) apply(op Op) svcState {
	switch op.Kind {
	case OpUndeploy, OpDelete:
		return svcState{}
	case OpPut:
		return svcState{present: true, gen: op.Value}
	}
	if !s.present {
		return svcState{present: true, gen: 1}
	}
	return svcState{present: true, gen: s.gen + 1}
}

// removes reports whether an operation takes a service or key away.
func removes(kind OpKind) bool { return kind == OpUndeploy || kind == OpDelete }

// config is one possible world: the service's state and the writes of
// unknown outcome that have not taken effect yet (bits of an index).
type config struct {
	st      svcState
	pending uint64
}

// Limits of the search over unknown writes; past them a service is
// reported as unchecked instead of guessed at.
const (
	maxUnknownWrites = 63
	maxWorlds        = 200_000
)

// lateHorizon is how long after its caller gave up a write of unknown
// outcome may still take effect. The API sends the caller's deadline with
// every write and every replica refuses an entry the leader appended after
// it (the deadlined command), so a late write is one appended in time that
// a leader commits afterwards: at the latest when the next leader commits
// its first entry, within an election. 15 s is past the suite's 10 s limit
// on recovering from a fault; after it, the checker takes the write as one
// that never happened, which keeps the number of possible worlds bounded
// (a key written every few hundred milliseconds with a 2 s timeout would
// otherwise carry every unknown write of the run).
const lateHorizon = 15 * time.Second

// errTooComplex ends the search for one service.
var errTooComplex = fmt.Errorf("more than %d possible worlds", maxWorlds)

// closure adds every world reachable by letting pending writes take effect,
// in any order.
func closure(worlds map[config]bool, kinds []Op) (map[config]bool, error) {
	queue := make([]config, 0, len(worlds))
	for w := range worlds {
		queue = append(queue, w)
	}
	for len(queue) > 0 {
		w := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for i := range kinds {
			bit := uint64(1) << i
			if w.pending&bit == 0 {
				continue
			}
			next := config{st: w.st.apply(kinds[i]), pending: w.pending &^ bit}
			if !worlds[next] {
				if len(worlds) >= maxWorlds {
					return nil, errTooComplex
				}
				worlds[next] = true
				queue = append(queue, next)
			}
		}
	}
	return worlds, nil
}

func statesOf(worlds map[config]bool) string {
	seen := map[svcState]bool{}
	var list []svcState
	for w := range worlds {
		if !seen[w.st] {
			seen[w.st] = true
			list = append(list, w.st)
		}
	}
	slices.SortFunc(list, func(a, b svcState) int {
		if a.present != b.present {
			if a.present {
				return 1
			}
			return -1
		}
		return int(a.gen - b.gen)
	})
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// CheckAcknowledged checks each service's and each key's writes (issued
// one at a time per service or key, by one writer) and the state after the heal against every order
// in which they may have taken effect: an acknowledged write took effect
// between its request and its answer; a write the API said changed nothing
// (OutcomeFailed) never did; a write of unknown outcome either never did or
// did at any moment after its request, however late. So an acknowledged
// deploy must return a generation some world allows, an acknowledged
// undeploy must find the service, a "not found" must be possible, and the
// final state (final maps each service the cluster holds to its
// generation; absent means gone) must be one some world ends in. This is
// "every acknowledged write is in the state after the heal", made exact.
func CheckAcknowledged(h *History, ops []Op, final map[string]int64) *Violation {
	byService := map[string][]Op{}
	for _, op := range ops {
		if op.Kind == OpRead {
			continue // CheckReads
		}
		byService[op.Service] = append(byService[op.Service], op)
	}
	v := &Violation{Check: "every acknowledged write survives"}
	for _, svc := range sortedKeys(byService) {
		list := byService[svc]
		sort.SliceStable(list, func(i, j int) bool { return list[i].Start.Before(list[j].Start) })
		gen, present := final[svc]
		problems := checkService(list, svcState{present: present, gen: gen})
		if len(problems) == 0 {
			continue
		}
		for _, pr := range problems {
			v.Problems = append(v.Problems, svc+": "+pr)
		}
		for _, op := range list {
			v.History = append(v.History, h.FormatOp(op))
		}
	}
	for _, svc := range sortedKeys(final) {
		if _, ok := byService[svc]; !ok {
			v.Problems = append(v.Problems, fmt.Sprintf("%s exists (generation %d) but no client ever wrote it", svc, final[svc]))
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	v.History = append(v.History, h.FaultLines()...)
	return v
}

// expireLate ends the writes of unknown outcome whose caller gave up more
// than lateHorizon before now: in the worlds where one has not taken
// effect (closure has added those where it has), it never will. Their bits
// join free.
func expireLate(worlds map[config]bool, kinds []Op, free []int, now time.Time) (map[config]bool, []int) {
	var expired uint64
	for i, op := range kinds {
		if slices.Contains(free, i) || op.End.IsZero() || !op.End.Add(lateHorizon).Before(now) {
			continue
		}
		expired |= uint64(1) << i
		free = append(free, i)
	}
	if expired == 0 {
		return worlds, free
	}
	next := make(map[config]bool, len(worlds))
	for w := range worlds {
		w.pending &^= expired
		next[w] = true
	}
	return next, free
}

// checkService replays one service's writes; see CheckAcknowledged.
func checkService(list []Op, final svcState) []string {
	var problems []string
	var kinds []Op // the writes of unknown outcome, by bit
	var free []int // bits of writes past lateHorizon, free for reuse
	worlds := map[config]bool{{}: true}
	for i, op := range list {
		if i > 0 && list[i-1].Outcome != "" && list[i-1].End.After(op.Start) {
			problems = append(problems, fmt.Sprintf("op#%d began before op#%d ended: the workload must write a service one operation at a time", op.ID, list[i-1].ID))
		}
		if op.Outcome == OutcomeUnknown || op.Outcome == "" {
			var bit uint64
			switch {
			case len(free) > 0:
				bit = uint64(1) << free[len(free)-1]
				kinds[free[len(free)-1]] = op
				free = free[:len(free)-1]
			case len(kinds) == maxUnknownWrites:
				return append(problems, fmt.Sprintf("not checked: more than %d writes of unknown outcome at once", maxUnknownWrites))
			default:
				bit = uint64(1) << len(kinds)
				kinds = append(kinds, op)
			}
			next := make(map[config]bool, len(worlds))
			for w := range worlds {
				w.pending |= bit
				next[w] = true
			}
			worlds = next
			continue
		}
		if op.Outcome == OutcomeFailed && !(removes(op.Kind) && op.Code == "not_found") {
			continue // the API says nothing changed
		}
		var err error
		if worlds, err = closure(worlds, kinds); err != nil {
			return append(problems, "not checked: "+err.Error())
		}
		worlds, free = expireLate(worlds, kinds, free, op.Start)
		before := statesOf(worlds)
		next := map[config]bool{}
		for w := range worlds {
			switch {
			case op.Outcome == OutcomeFailed: // undeploy or delete: not found
				if !w.st.present {
					next[w] = true
				}
			case op.Kind == OpDeploy:
				if after := w.st.apply(op); after.gen == op.Generation {
					next[config{st: after, pending: w.pending}] = true
				}
			case op.Kind == OpPut:
				next[config{st: w.st.apply(op), pending: w.pending}] = true
			case removes(op.Kind):
				if w.st.present {
					next[config{pending: w.pending}] = true
				}
			}
		}
		if len(next) > 0 {
			worlds = next
			continue
		}
		switch {
		case op.Outcome == OutcomeFailed:
			problems = append(problems, fmt.Sprintf("op#%d: the API said the service does not exist, but it must (it was %s)", op.ID, before))
		case op.Kind == OpDeploy:
			problems = append(problems, fmt.Sprintf("op#%d: an acknowledged deploy returned generation %d, but the service was %s", op.ID, op.Generation, before))
		default:
			problems = append(problems, fmt.Sprintf("op#%d: an %s was acknowledged, but the service was %s", op.ID, op.Kind, before))
		}
		// Go on from what the answer says, so one anomaly is reported once.
		for w := range worlds {
			st := svcState{}
			if op.Kind == OpDeploy && op.Outcome == OutcomeOK {
				st = svcState{present: true, gen: op.Generation}
			}
			next[config{st: st, pending: w.pending}] = true
		}
		worlds = next
	}
	worlds, err := closure(worlds, kinds)
	if err != nil {
		return append(problems, "not checked: "+err.Error())
	}
	for w := range worlds {
		if w.st == final {
			return problems
		}
	}
	return append(problems, fmt.Sprintf("after the heal the service is %s; its writes allow only %s", final, statesOf(worlds)))
}

// CheckReads checks every answered read of the keys against their writes
// (one writer per key, one write at a time): a read sees, for each key,
// the value of the last write acknowledged before the read began, or of a
// write that began before the read ended and was not refused, or of a
// write of unknown outcome that may have taken effect late; before any
// acknowledged write, absent is possible too. Anything else is a stale
// read (an older value than one already acknowledged) or a phantom (a
// value nobody wrote). Reads are linearizable by the API's contract
// (apiclient.Consistent), so this holds under every fault.
func CheckReads(h *History, ops []Op) *Violation {
	writes := map[string][]Op{}
	var reads []Op
	for _, op := range ops {
		switch {
		case op.Kind == OpRead && op.Outcome == OutcomeOK:
			reads = append(reads, op)
		case op.Kind == OpPut || op.Kind == OpDelete:
			writes[op.Service] = append(writes[op.Service], op)
		}
	}
	for _, ws := range writes {
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
	}
	v := &Violation{Check: "every read sees the latest acknowledged write"}
	bad := map[string]bool{}
	for _, r := range reads {
		for _, key := range sortedKeys(writes) {
			got := svcState{}
			if val, ok := r.Read[key]; ok {
				got = svcState{present: true, gen: val}
			}
			allowed := readAllows(writes[key], r)
			if !slices.Contains(allowed, got) {
				bad[key] = true
				parts := make([]string, len(allowed))
				for i, a := range allowed {
					parts[i] = a.String()
				}
				v.Problems = append(v.Problems, fmt.Sprintf("op#%d (read via %s) saw %s %s; its writes allow only %s",
					r.ID, r.Node, key, strings.Replace(got.String(), "generation", "value", 1), strings.ReplaceAll(strings.Join(parts, ", "), "generation", "value")))
			}
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	if len(v.Problems) > 50 {
		n := len(v.Problems)
		v.Problems = append(v.Problems[:50], fmt.Sprintf("... and %d more", n-50))
	}
	for _, key := range sortedKeys(bad) {
		for _, op := range writes[key] {
			v.History = append(v.History, h.FormatOp(op))
		}
	}
	v.History = append(v.History, h.FaultLines()...)
	return v
}

// readAllows is what read r may see of a key with writes ws (by start).
func readAllows(ws []Op, r Op) []svcState {
	last := -1 // the last write acknowledged before the read began
	for i, w := range ws {
		if w.Outcome == OutcomeOK && w.End.Before(r.Start) {
			last = i
		}
	}
	var out []svcState
	add := func(s svcState) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if last < 0 {
		add(svcState{})
	} else {
		add(svcState{}.apply(ws[last]))
	}
	for i, w := range ws {
		switch {
		case w.Outcome == OutcomeFailed: // changed nothing
		case i > last && w.Start.Before(r.End):
			add(svcState{}.apply(w))
		case i < last && w.Outcome != OutcomeOK: // unknown: may land late
			add(svcState{}.apply(w))
		}
	}
	return out
}

// Container is one container on the engine, as the container check sees it.
type Container struct {
	ID, Name string
	Running  bool
	Labels   map[string]string
}

// CheckContainers compares the instances the state wants with the
// containers the agents run (by their labels): every instance with a
// desired generation has exactly one container on its node, running that
// generation, and no container runs for an instance that is not wanted
// there.
func CheckContainers(instances []raftfsm.Instance, containers []Container) *Violation {
	v := &Violation{Check: "the containers are what the state wants"}
	wanted := map[string]raftfsm.Instance{}
	for _, in := range instances {
		wanted[in.ID] = in
	}
	byInstance := map[string][]Container{}
	for _, c := range containers {
		id := c.Labels[runtime.LabelInstance]
		in, ok := wanted[id]
		switch {
		case !ok:
			v.Problems = append(v.Problems, fmt.Sprintf("container %s (node %s, instance %q) belongs to no instance of the state", c.Name, c.Labels[runtime.LabelNode], id))
		case c.Labels[runtime.LabelNode] != in.Node:
			v.Problems = append(v.Problems, fmt.Sprintf("container %s of instance %s is on node %s; the state places it on %s", c.Name, id, c.Labels[runtime.LabelNode], in.Node))
		default:
			byInstance[id] = append(byInstance[id], c)
		}
	}
	for _, id := range sortedKeys(wanted) {
		in := wanted[id]
		if in.DesiredGeneration == 0 {
			continue
		}
		cs := byInstance[id]
		want := fmt.Sprint(in.DesiredGeneration)
		var running []string
		for _, c := range cs {
			if c.Running && c.Labels[runtime.LabelGeneration] == want {
				running = append(running, c.Name)
			}
		}
		switch {
		case len(running) == 0:
			v.Problems = append(v.Problems, fmt.Sprintf("instance %s on %s wants generation %d; no container runs it (%d containers: %s)", id, in.Node, in.DesiredGeneration, len(cs), describe(cs)))
		case len(cs) > 1:
			v.Problems = append(v.Problems, fmt.Sprintf("instance %s on %s has %d containers: %s", id, in.Node, len(cs), describe(cs)))
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	slices.Sort(v.Problems)
	return v
}

func describe(cs []Container) string {
	var parts []string
	for _, c := range cs {
		state := "stopped"
		if c.Running {
			state = "running"
		}
		parts = append(parts, fmt.Sprintf("%s gen=%s %s", c.Name, c.Labels[runtime.LabelGeneration], state))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// CheckCloud checks the fake cloud after the run: one droplet per node
// name, no duplicate DNS record, and no record for a host that nothing in
// wantHosts serves (the DNS duty removes the records of undeployed
// services).
func CheckCloud(st fakeapi.State, wantDroplets int, wantHosts []string) *Violation {
	v := &Violation{Check: "no duplicate droplets or DNS records"}
	names := map[string]int{}
	for _, d := range st.Droplets {
		names[d.Name]++
	}
	for _, n := range sortedKeys(names) {
		if names[n] > 1 {
			v.Problems = append(v.Problems, fmt.Sprintf("%d droplets are named %s", names[n], n))
		}
	}
	if len(st.Droplets) != wantDroplets {
		v.Problems = append(v.Problems, fmt.Sprintf("%d droplets, want %d", len(st.Droplets), wantDroplets))
	}
	records := map[string]int{}
	for _, r := range st.DNSRecords {
		records[r.Type+" "+r.Name+" "+r.Content]++
		if wantHosts != nil && !slices.Contains(wantHosts, r.Name) {
			v.Problems = append(v.Problems, fmt.Sprintf("record %s %s -> %s is for a host nothing serves", r.Type, r.Name, r.Content))
		}
	}
	for _, k := range sortedKeys(records) {
		if records[k] > 1 {
			v.Problems = append(v.Problems, fmt.Sprintf("record %s exists %d times", k, records[k]))
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	for _, d := range st.Droplets {
		var acts []string
		for _, a := range d.Actions {
			acts = append(acts, a.Type+":"+a.Status)
		}
		v.History = append(v.History, fmt.Sprintf("droplet %d %s %s actions=[%s]", d.ID, d.Name, d.Status, strings.Join(acts, " ")))
	}
	for _, r := range st.DNSRecords {
		v.History = append(v.History, fmt.Sprintf("record %s %s %s -> %s", r.ID, r.Type, r.Name, r.Content))
	}
	return v
}

// Recovery is how long the API took to accept a write again after a fault.
type Recovery struct {
	Fault  string
	Target string
	// Took is from the fault's injection to the first acknowledged write;
	// negative when no write was accepted before the measurement gave up.
	Took time.Duration
	// UITook is from the injection until the web UI's sign-in page answered
	// through a spared node; negative when it did not.
	UITook time.Duration
}

// MembershipHeal is how long after a fault was healed the leader saw every
// node alive in the gossip again; negative when it did not within the grace.
type MembershipHeal struct {
	Fault  string
	Target string
	Took   time.Duration
}

// CheckMembership checks that the gossip healed after every fault: a node
// the others keep for dead is missing from the UI's and the API's member
// list, and the leader's autopilot removes a voter dead for long enough.
func CheckMembership(hs []MembershipHeal, grace time.Duration) *Violation {
	v := &Violation{Check: fmt.Sprintf("the gossip shows every node alive within %s of a heal", grace)}
	for _, m := range hs {
		if m.Took < 0 {
			v.Problems = append(v.Problems, fmt.Sprintf("after %s on %s the leader still saw a node dead or missing", m.Fault, m.Target))
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	return v
}

// CheckFailover checks every recovery against the limit.
func CheckFailover(rs []Recovery, limit time.Duration) *Violation {
	v := &Violation{Check: fmt.Sprintf("the API accepts writes and the UI answers again within %s of a fault", limit)}
	for _, r := range rs {
		switch {
		case r.Took < 0:
			v.Problems = append(v.Problems, fmt.Sprintf("%s %s: no write was accepted at all", r.Fault, r.Target))
		case r.Took > limit:
			v.Problems = append(v.Problems, fmt.Sprintf("%s %s: the first write was accepted after %s", r.Fault, r.Target, r.Took.Round(time.Millisecond)))
		}
		switch {
		case r.UITook < 0:
			v.Problems = append(v.Problems, fmt.Sprintf("%s %s: the UI never answered", r.Fault, r.Target))
		case r.UITook > limit:
			v.Problems = append(v.Problems, fmt.Sprintf("%s %s: the UI answered again after %s", r.Fault, r.Target, r.UITook.Round(time.Millisecond)))
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
