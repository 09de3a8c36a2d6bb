package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// script builds a history of one writer's operations on one service, one
// second apart.
type script struct {
	h   *History
	ops []Op
	at  time.Time
}

func newScript() *script { h := NewHistory(); return &script{h: h, at: h.start} }

func (s *script) op(kind OpKind, out Outcome, gen int64, code string) *script {
	op := Op{ID: len(s.ops), Kind: kind, Service: "p/e/s", Node: "n1", Start: s.at, End: s.at.Add(500 * time.Millisecond), Outcome: out, Code: code}
	if out == OutcomeOK {
		op.Generation = gen
	} else {
		op.Err = "boom"
	}
	s.ops = append(s.ops, op)
	s.at = s.at.Add(time.Second)
	return s
}

func (s *script) deploy(out Outcome, gen int64) *script { return s.op(OpDeploy, out, gen, "") }
func (s *script) undeploy(out Outcome) *script          { return s.op(OpUndeploy, out, 0, "") }

func (s *script) check(final map[string]int64) *Violation {
	return CheckAcknowledged(s.h, s.ops, final)
}

func TestCheckAcknowledged(t *testing.T) {
	present := func(gen int64) map[string]int64 { return map[string]int64{"p/e/s": gen} }
	absent := map[string]int64{}
	cases := []struct {
		name  string
		s     *script
		final map[string]int64
		want  string // "" = passes; else a fragment of the problem
	}{
		{"updates survive", newScript().deploy(OutcomeOK, 1).deploy(OutcomeOK, 2), present(2), ""},
		{"acknowledged deploy lost", newScript().deploy(OutcomeOK, 1).deploy(OutcomeOK, 2), present(1), "allow only generation 2"},
		{"acknowledged service gone", newScript().deploy(OutcomeOK, 1), absent, "allow only generation 1"},
		{"undeploy survives", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeOK), absent, ""},
		{"undeploy lost", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeOK), present(1), "allow only absent"},
		{"redeploy restarts generations", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeOK).deploy(OutcomeOK, 1), present(1), ""},
		{"unknown undeploy may or may not", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeUnknown), absent, ""},
		{"unknown undeploy may not", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeUnknown), present(1), ""},
		{"unknown deploy may apply", newScript().deploy(OutcomeOK, 1).deploy(OutcomeUnknown, 0), present(2), ""},
		{"unknown deploy applies once at most", newScript().deploy(OutcomeOK, 1).deploy(OutcomeUnknown, 0), present(3), "allow only generation 1, generation 2"},
		{"a late unknown deploy recreates", newScript().deploy(OutcomeOK, 1).deploy(OutcomeUnknown, 0).undeploy(OutcomeOK), present(1), ""},
		{"a late unknown deploy cannot skip", newScript().deploy(OutcomeOK, 1).deploy(OutcomeUnknown, 0).undeploy(OutcomeOK), present(2), "allow only absent, generation 1"},
		{"unknown deploy explains a generation", newScript().deploy(OutcomeOK, 1).deploy(OutcomeUnknown, 0).deploy(OutcomeOK, 3), present(3), ""},
		{"a deploy applied twice", newScript().deploy(OutcomeOK, 1).deploy(OutcomeOK, 3), present(3), "returned generation 3, but the service was generation 1"},
		{"a refused write took effect", newScript().deploy(OutcomeOK, 1).deploy(OutcomeFailed, 0), present(2), "allow only generation 1"},
		{"a refused write changed nothing", newScript().deploy(OutcomeOK, 1).deploy(OutcomeFailed, 0), present(1), ""},
		{"undeploy of nothing", newScript().undeploy(OutcomeOK), absent, "an undeploy was acknowledged, but the service was absent"},
		{"not found for a service that exists", newScript().deploy(OutcomeOK, 1).op(OpUndeploy, OutcomeFailed, 0, "not_found"), present(1), "does not exist, but it must"},
		{"not found after an unknown undeploy", newScript().deploy(OutcomeOK, 1).undeploy(OutcomeUnknown).op(OpUndeploy, OutcomeFailed, 0, "not_found"), absent, ""},
		{"never written", newScript().deploy(OutcomeFailed, 0), present(1), "allow only absent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.s.check(c.final)
			switch {
			case c.want == "" && v != nil:
				t.Fatalf("unexpected violation:\n%v", v)
			case c.want != "" && v == nil:
				t.Fatalf("no violation, want one saying %q", c.want)
			case c.want != "" && !strings.Contains(v.Error(), c.want):
				t.Fatalf("violation does not say %q:\n%v", c.want, v)
			}
			if v != nil && !strings.Contains(v.Error(), "op#0") {
				t.Fatalf("the violation does not print the service's history:\n%v", v)
			}
		})
	}
}

// put and del add key writes (on key "k") to the script; read adds a read
// that began at from and ended at to (offsets from the start), seeing the
// key with value v, or not at all when v is 0.
func (s *script) put(out Outcome, v int64) *script {
	s.op(OpPut, out, 0, "")
	op := &s.ops[len(s.ops)-1]
	op.Service, op.Value = "key/k", v
	return s
}

func (s *script) del(out Outcome, code string) *script {
	s.op(OpDelete, out, 0, code)
	s.ops[len(s.ops)-1].Service = "key/k"
	return s
}

func (s *script) read(from, to time.Duration, v int64) *script {
	op := Op{ID: len(s.ops), Kind: OpRead, Node: "n2", Start: s.h.start.Add(from), End: s.h.start.Add(to), Outcome: OutcomeOK, Read: map[string]int64{}}
	if v != 0 {
		op.Read["key/k"] = v
	}
	s.ops = append(s.ops, op)
	return s
}

// wait moves the script's clock on by d.
func (s *script) wait(d time.Duration) *script {
	s.at = s.at.Add(d)
	return s
}

// manyUnknown is a key written n times with unknown outcomes, one second
// apart, each followed by an acknowledged put: more unknown writes than a
// search over all of them could hold, checkable because writes past
// lateHorizon no longer take effect.
func manyUnknown(n int) *script {
	s := newScript()
	for i := range n {
		s.put(OutcomeUnknown, int64(2*i+1)).put(OutcomeOK, int64(2*i+2))
	}
	return s
}

func TestCheckAcknowledgedKeys(t *testing.T) {
	key := func(v int64) map[string]int64 { return map[string]int64{"key/k": v} }
	cases := []struct {
		name  string
		s     *script
		final map[string]int64
		want  string
	}{
		{"the last put survives", newScript().put(OutcomeOK, 1).put(OutcomeOK, 2), key(2), ""},
		{"an acknowledged put lost", newScript().put(OutcomeOK, 1).put(OutcomeOK, 2), key(1), "allow only generation 2"},
		{"a delete survives", newScript().put(OutcomeOK, 1).del(OutcomeOK, ""), map[string]int64{}, ""},
		{"a delete lost", newScript().put(OutcomeOK, 1).del(OutcomeOK, ""), key(1), "allow only absent"},
		{"an unknown put may land", newScript().put(OutcomeOK, 1).put(OutcomeUnknown, 2), key(2), ""},
		{"a refused put changed nothing", newScript().put(OutcomeOK, 1).put(OutcomeFailed, 2), key(2), "allow only generation 1"},
		{"delete of a key that exists said not found", newScript().put(OutcomeOK, 1).del(OutcomeFailed, "not_found"), key(1), "does not exist, but it must"},
		{"a delete acknowledged on nothing", newScript().del(OutcomeOK, ""), map[string]int64{}, "delete was acknowledged, but the service was absent"},
		{"an unknown put may land after a later acknowledged one", newScript().put(OutcomeUnknown, 2).wait(5*time.Second).put(OutcomeOK, 3), key(2), ""},
		{"an unknown put cannot land past the horizon", newScript().put(OutcomeUnknown, 2).wait(lateHorizon).put(OutcomeOK, 3), key(2), "allow only generation 3"},
		{"many unknown puts over a long run are checked", manyUnknown(200).put(OutcomeOK, 999), key(999), ""},
		{"and an acknowledged put is still required", manyUnknown(200).put(OutcomeOK, 999), key(5), "after the heal the service is generation 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.s.check(c.final)
			switch {
			case c.want == "" && v != nil:
				t.Fatalf("unexpected violation:\n%v", v)
			case c.want != "" && (v == nil || !strings.Contains(v.Error(), c.want)):
				t.Fatalf("want a violation saying %q, got %v", c.want, v)
			}
		})
	}
}

func TestCheckReads(t *testing.T) {
	// Writes at 0-0.5 s (put 1), 1-1.5 s (put 2 or its variant), 2-2.5 s (the third).
	base := func(second Outcome) *script {
		return newScript().put(OutcomeOK, 1).put(second, 2).del(OutcomeOK, "")
	}
	ms := time.Millisecond
	cases := []struct {
		name string
		s    *script
		want string
	}{
		{"before any write: absent", base(OutcomeOK).read(-100*ms, -50*ms, 0), ""},
		{"during the first put: either", base(OutcomeOK).read(100*ms, 200*ms, 1).read(100*ms, 200*ms, 0), ""},
		{"after the first put: its value", base(OutcomeOK).read(600*ms, 900*ms, 1), ""},
		{"after the first put: not absent", base(OutcomeOK).read(600*ms, 900*ms, 0), "saw key/k absent"},
		{"overlapping the second put: old or new", base(OutcomeOK).read(900*ms, 1200*ms, 1).read(900*ms, 1200*ms, 2), ""},
		{"a stale read", base(OutcomeOK).read(1600*ms, 1700*ms, 1), "saw key/k value 1; its writes allow only value 2"},
		{"a value nobody wrote", base(OutcomeOK).read(600*ms, 700*ms, 7), "saw key/k value 7"},
		{"a future value", base(OutcomeOK).read(600*ms, 700*ms, 2), "saw key/k value 2"},
		{"after the delete: absent", base(OutcomeOK).read(2600*ms, 2700*ms, 0), ""},
		{"after the delete: not the old value", base(OutcomeOK).read(2600*ms, 2700*ms, 2), "saw key/k value 2"},
		{"an unknown put may land late", base(OutcomeUnknown).read(2600*ms, 2700*ms, 2), ""},
		{"a refused put is never seen", base(OutcomeFailed).read(1600*ms, 1700*ms, 2), "saw key/k value 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := CheckReads(c.s.h, c.s.ops)
			switch {
			case c.want == "" && v != nil:
				t.Fatalf("unexpected violation:\n%v", v)
			case c.want != "" && (v == nil || !strings.Contains(v.Error(), c.want)):
				t.Fatalf("want a violation saying %q, got %v", c.want, v)
			}
		})
	}
}

func TestCheckAcknowledgedFlagsOverlapAndStrangers(t *testing.T) {
	s := newScript().deploy(OutcomeOK, 1).deploy(OutcomeOK, 2)
	s.ops[0].End = s.ops[1].Start.Add(time.Millisecond)
	if v := s.check(map[string]int64{"p/e/s": 2}); v == nil || !strings.Contains(v.Error(), "one operation at a time") {
		t.Fatalf("overlapping writes not flagged: %v", v)
	}
	s = newScript().deploy(OutcomeOK, 1)
	if v := s.check(map[string]int64{"p/e/s": 1, "p/e/other": 4}); v == nil || !strings.Contains(v.Error(), "no client ever wrote it") {
		t.Fatalf("a service nobody wrote not flagged: %v", v)
	}
}

func TestCheckAcknowledgedGivesUpOnTooManyUnknowns(t *testing.T) {
	s := newScript().deploy(OutcomeOK, 1)
	for i := 0; i < maxUnknownWrites+1; i++ {
		s.deploy(OutcomeUnknown, 0)
	}
	v := s.check(map[string]int64{"p/e/s": 1})
	if v == nil || !strings.Contains(v.Error(), "not checked") {
		t.Fatalf("want a 'not checked' report, got %v", v)
	}
}

func TestCheckLeaders(t *testing.T) {
	h := NewHistory()
	at := h.start
	ok := []Sample{
		{At: at, Node: "n1", Leader: "n1", Term: 2},
		{At: at, Node: "n2", Leader: "n1", Term: 2},
		// a follower that voted in term 3 still names the old leader: not a self-report
		{At: at, Node: "n3", Leader: "n1", Term: 3},
		{At: at, Node: "n2", Leader: "n2", Term: 3},
		{At: at, Node: "n1", Err: "timeout"},
	}
	if v := CheckLeaders(h, ok); v != nil {
		t.Fatalf("unexpected violation: %v", v)
	}
	bad := append(ok, Sample{At: at.Add(time.Second), Node: "n3", Leader: "n3", Term: 3})
	v := CheckLeaders(h, bad)
	if v == nil || !strings.Contains(v.Error(), "term 3 had leaders n2 and n3") {
		t.Fatalf("two leaders in term 3 not reported: %v", v)
	}
	if !strings.Contains(v.Error(), "term=3 leader=n3") || strings.Contains(v.Error(), "term=2") {
		t.Fatalf("the violation should print term 3's samples only:\n%v", v)
	}
}

func ctr(name, instance, node, gen string, running bool) Container {
	return Container{ID: name, Name: name, Running: running, Labels: map[string]string{
		runtime.LabelInstance: instance, runtime.LabelNode: node, runtime.LabelGeneration: gen}}
}

func TestCheckContainers(t *testing.T) {
	instances := []raftfsm.Instance{
		{ID: "a#0", Node: "n1", DesiredGeneration: 2},
		{ID: "a#1", Node: "n2", DesiredGeneration: 2},
		{ID: "b#0", Node: "n3", DesiredGeneration: 0}, // nothing to run yet
	}
	good := []Container{ctr("a0", "a#0", "n1", "2", true), ctr("a1", "a#1", "n2", "2", true)}
	if v := CheckContainers(instances, good); v != nil {
		t.Fatalf("unexpected violation: %v", v)
	}
	cases := map[string]struct {
		cs   []Container
		want string
	}{
		"missing":        {good[:1], "instance a#1 on n2 wants generation 2; no container runs it"},
		"stopped":        {[]Container{good[0], ctr("a1", "a#1", "n2", "2", false)}, "no container runs it"},
		"old generation": {[]Container{good[0], ctr("a1", "a#1", "n2", "1", true)}, "no container runs it"},
		"unwanted":       {append(good[:2:2], ctr("x", "gone#0", "n1", "1", true)), "container x (node n1, instance \"gone#0\") belongs to no instance"},
		"wrong node":     {append(good[:2:2], ctr("a1b", "a#1", "n3", "2", true)), "is on node n3; the state places it on n2"},
		"duplicate":      {append(good[:2:2], ctr("a0-g2", "a#0", "n1", "1", true)), "instance a#0 on n1 has 2 containers"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v := CheckContainers(instances, c.cs)
			if v == nil || !strings.Contains(v.Error(), c.want) {
				t.Fatalf("want a violation saying %q, got %v", c.want, v)
			}
		})
	}
}

func TestCheckCloud(t *testing.T) {
	droplet := func(id int, name string) fakeapi.StateDroplet {
		var d fakeapi.StateDroplet
		d.ID, d.Name = id, name
		return d
	}
	record := func(id, name, ip string) fakeapi.CFRecord {
		return fakeapi.CFRecord{ID: id, Type: "A", Name: name, Content: ip}
	}
	st := fakeapi.State{
		Droplets:   []fakeapi.StateDroplet{droplet(1, "c-n1"), droplet(2, "c-n2")},
		DNSRecords: []fakeapi.CFRecord{record("r1", "s1.chaos.test", "10.0.0.2"), record("r2", "s1.chaos.test", "10.0.0.3")},
	}
	hosts := []string{"s1.chaos.test"}
	if v := CheckCloud(st, 2, hosts); v != nil {
		t.Fatalf("unexpected violation: %v", v)
	}
	dup := st
	dup.Droplets = append(dup.Droplets, droplet(3, "c-n2"))
	if v := CheckCloud(dup, 2, hosts); v == nil || !strings.Contains(v.Error(), "2 droplets are named c-n2") || !strings.Contains(v.Error(), "3 droplets, want 2") {
		t.Fatalf("duplicate droplet not reported: %v", v)
	}
	dup = st
	dup.DNSRecords = append(dup.DNSRecords, record("r3", "s1.chaos.test", "10.0.0.3"))
	if v := CheckCloud(dup, 2, hosts); v == nil || !strings.Contains(v.Error(), "record A s1.chaos.test 10.0.0.3 exists 2 times") {
		t.Fatalf("duplicate record not reported: %v", v)
	}
	if v := CheckCloud(st, 2, []string{"other.chaos.test"}); v == nil || !strings.Contains(v.Error(), "for a host nothing serves") {
		t.Fatalf("stale record not reported: %v", v)
	}
	if v := CheckCloud(st, 2, nil); v != nil {
		t.Fatalf("nil hosts should skip the stale-record check: %v", v)
	}
}

func TestCheckFailover(t *testing.T) {
	rs := []Recovery{{Fault: "kill-leader", Target: "n1", Took: 800 * time.Millisecond, UITook: 900 * time.Millisecond}}
	if v := CheckFailover(rs, time.Second); v != nil {
		t.Fatalf("unexpected violation: %v", v)
	}
	rs = append(rs, Recovery{Fault: "partition-leader", Target: "n2", Took: 3 * time.Second, UITook: 500 * time.Millisecond},
		Recovery{Fault: "pause", Target: "n3", Took: -1, UITook: -1},
		Recovery{Fault: "restart", Target: "n1", Took: 100 * time.Millisecond, UITook: 2 * time.Second})
	v := CheckFailover(rs, time.Second)
	for _, want := range []string{"partition-leader n2: the first write was accepted after 3s", "pause n3: no write was accepted",
		"pause n3: the UI never answered", "restart n1: the UI answered again after 2s"} {
		if v == nil || !strings.Contains(v.Error(), want) {
			t.Fatalf("slow recoveries not reported (%q): %v", want, v)
		}
	}
	if strings.Contains(v.Error(), "kill-leader") {
		t.Fatalf("a recovery within the limit reported: %v", v)
	}
}

func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}
	cases := []struct {
		err  error
		want Outcome
		code string
	}{
		{nil, OutcomeOK, ""},
		{&apiclient.APIError{Status: 400, Code: "invalid"}, OutcomeFailed, "invalid"},
		{&apiclient.APIError{Status: 404, Code: "not_found"}, OutcomeFailed, "not_found"},
		{&apiclient.APIError{Status: 503, Code: "not_leader"}, OutcomeFailed, "not_leader"},
		{&apiclient.APIError{Status: 503, Code: "no_leader"}, OutcomeFailed, "no_leader"},
		{&apiclient.APIError{Status: 504, Code: "timeout"}, OutcomeUnknown, "timeout"},
		{&apiclient.APIError{Status: 500, Code: "internal"}, OutcomeUnknown, "internal"},
		{fmt.Errorf("%w (tried x): %w", apiclient.ErrNoAgent, dial), OutcomeFailed, ""},
		{fmt.Errorf("POST /v1/services: %w", read), OutcomeUnknown, ""},
		{context.DeadlineExceeded, OutcomeUnknown, ""},
	}
	for _, c := range cases {
		got, code := Classify(c.err)
		if got != c.want || code != c.code {
			t.Errorf("Classify(%v) = %s %q, want %s %q", c.err, got, code, c.want, c.code)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := FullConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"two nodes":      func(c *Config) { c.Nodes = 2 },
		"no writers":     func(c *Config) { c.Workers = 0 },
		"no timeout":     func(c *Config) { c.OpTimeout = 0 },
		"fast health":    func(c *Config) { c.HealthInterval = time.Millisecond },
		"no disk":        func(c *Config) { c.DiskSize = "" },
		"no fault delay": func(c *Config) { c.FaultFor = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
