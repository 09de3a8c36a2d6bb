package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The whole path: a real FSM as the source, one receiver per format, a
// flaky one, one that always fails and one where nothing listens.
func TestRunDeliversEachFormatOnceWithRetries(t *testing.T) {
	c := newCluster(t)
	generic := newReceiver(t, c, nil)
	slack := newReceiver(t, c, nil)
	discord := newReceiver(t, c, nil)
	flaky := newReceiver(t, c, func(n int) int {
		if n <= 2 {
			return 500
		}
		return 0
	})
	down := newReceiver(t, c, func(int) int { return 503 })
	hooked := t0.Add(time.Minute)
	c.webhook(hooked, "generic", generic.URL(), raftfsm.WebhookGeneric)
	c.webhook(hooked, "slack", slack.URL(), raftfsm.WebhookSlack)
	c.webhook(hooked, "discord", discord.URL(), raftfsm.WebhookDiscord)
	c.webhook(hooked, "flaky", flaky.URL(), raftfsm.WebhookGeneric)
	c.webhook(hooked, "down", down.URL(), raftfsm.WebhookGeneric)
	c.webhook(hooked, "nobody", deadURL(t), raftfsm.WebhookSlack)

	at := hooked.Add(time.Minute)
	failed := c.event(at, raftfsm.EventDeployFailed, raftfsm.SeverityError, "deploy of 9fe5e6/shop/prod/web generation 3 failed: <health> & co",
		func(e *raftfsm.Event) { e.Service, e.Deploy = "9fe5e6/shop/prod/web", "dep-1" })
	c.event(at, raftfsm.EventDeploySucceeded, raftfsm.SeverityInfo, "web generation 2 is live", nil) // not in the default set
	c.event(at, raftfsm.EventHealth, raftfsm.SeverityWarn, "web is degraded", nil)                   // not in the default set
	restart := c.event(at, raftfsm.EventHealRestart, raftfsm.SeverityWarn, "restarting web#0 after 3 unhealthy checks",
		func(e *raftfsm.Event) {
			e.Service, e.Instance, e.Node = "9fe5e6/shop/prod/web", "9fe5e6/shop/prod/web#0", "node-1"
		})
	// node.lost the way the healer records it: a real status change.
	c.must(&raftfsm.SetNodeStatus{At: at, Node: "node-2", Status: raftfsm.NodeDead, Reason: "no answer for 5 pings"})
	var lost uint64
	c.View(func(s *raftfsm.State) { lost = s.Events.NextSeq })

	startRun(t, c, testConfig(t))

	want := []uint64{failed, restart, lost}
	for _, r := range []*receiver{generic, slack, discord, flaky} {
		testkit.WaitFor(t, 10*time.Second, "3 deliveries", func() bool { return len(r.requests()) >= len(want) })
	}
	testkit.WaitFor(t, 10*time.Second, "the dead target's attempts", func() bool { return down.attemptCount() >= 3*len(want) })

	got := generic.generic(t)
	if len(got) != len(want) {
		t.Fatalf("generic got %d events, want %d", len(got), len(want))
	}
	for i, p := range got {
		if p.Seq != want[i] || p.Cluster != "prod-eu" {
			t.Errorf("generic[%d] = seq %d cluster %q, want seq %d cluster prod-eu", i, p.Seq, p.Cluster, want[i])
		}
	}
	if got[0].Kind != raftfsm.EventDeployFailed || got[0].Service != "9fe5e6/shop/prod/web" || got[0].Deploy != "dep-1" || got[0].Severity != raftfsm.SeverityError || !got[0].At.Equal(at) {
		t.Errorf("generic deploy.failed payload = %+v", got[0])
	}
	if got[2].Kind != raftfsm.EventNodeLost || got[2].Node != "node-2" {
		t.Errorf("generic node.lost payload = %+v", got[2])
	}
	// Exactly the documented generic fields, nothing else.
	var raw map[string]any
	if err := json.Unmarshal(generic.requests()[1].body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster", "seq", "at", "kind", "severity", "node", "service", "instance", "message"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("generic heal.restart payload lacks %q: %v", k, raw)
		}
	}

	var s SlackPayload
	if err := json.Unmarshal(slack.requests()[0].body, &s); err != nil {
		t.Fatal(err)
	}
	if wantText := "🔴 [prod-eu] deploy.failed shop/prod/web: deploy of 9fe5e6/shop/prod/web generation 3 failed: &lt;health&gt; &amp; co"; s.Text != wantText {
		t.Errorf("slack text = %q, want %q", s.Text, wantText)
	}
	var d map[string]any
	if err := json.Unmarshal(discord.requests()[1].body, &d); err != nil {
		t.Fatal(err)
	}
	if d["content"] != "⚠️ [prod-eu] heal.restart shop/prod/web on node-1: restarting web#0 after 3 unhealthy checks" {
		t.Errorf("discord content = %q", d["content"])
	}
	if am, ok := d["allowed_mentions"].(map[string]any); !ok || len(am["parse"].([]any)) != 0 {
		t.Errorf("discord payload must forbid mentions: %v", d)
	}

	// The flaky receiver failed twice and then got every event, in order.
	if n := flaky.attemptCount(); n != len(want)+2 {
		t.Errorf("flaky receiver saw %d attempts, want %d (2 failures + %d)", n, len(want)+2, len(want))
	}
	for i, p := range flaky.generic(t) {
		if p.Seq != want[i] {
			t.Errorf("flaky[%d] = seq %d, want %d", i, p.Seq, want[i])
		}
	}
	// Every request arrived after the cursor had passed its event.
	for _, r := range []*receiver{generic, slack, discord, flaky} {
		for i, q := range r.requests() {
			if q.cursor < want[i] {
				t.Errorf("request for event %d arrived while the cursor was at %d: sent before it was committed", want[i], q.cursor)
			}
		}
	}
	if got := c.cursor(); got != lost {
		t.Errorf("cursor = %d, want %d (the last event of the batch)", got, lost)
	}
	// The always-failing target was tried MaxAttempts times per event and then given up.
	if n := down.attemptCount(); n != 3*len(want) {
		t.Errorf("down receiver saw %d attempts, want %d", n, 3*len(want))
	}
}

func TestKindsFilterByPrefix(t *testing.T) {
	c := newCluster(t)
	heal := newReceiver(t, c, nil)
	deploys := newReceiver(t, c, nil)
	all := newReceiver(t, c, nil)
	// Created after the cluster's own events (init, nodes joined).
	hooked := t0.Add(time.Millisecond)
	c.webhook(hooked, "heal", heal.URL(), raftfsm.WebhookGeneric, "heal.")
	c.webhook(hooked, "deploys", deploys.URL(), raftfsm.WebhookGeneric, "deploy.", "node.lost")
	c.webhook(hooked, "all", all.URL(), raftfsm.WebhookGeneric, raftfsm.WebhookAllKinds)
	at := t0.Add(time.Second)
	kinds := []string{raftfsm.EventDeployStarted, raftfsm.EventHealReboot, raftfsm.EventDeploySucceeded, raftfsm.EventNodeFound,
		raftfsm.EventHealReplace, raftfsm.EventNodeLost, raftfsm.EventHealth}
	for _, k := range kinds {
		c.event(at, k, raftfsm.SeverityInfo, "event "+k, nil)
	}
	startRun(t, c, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "every event at the catch-all", func() bool { return len(all.requests()) == len(kinds) })
	testkit.WaitFor(t, 10*time.Second, "heal events", func() bool { return len(heal.requests()) == 2 })
	testkit.WaitFor(t, 10*time.Second, "deploy events", func() bool { return len(deploys.requests()) == 3 })
	kindsOf := func(r *receiver) string {
		var ks []string
		for _, p := range r.generic(t) {
			ks = append(ks, p.Kind)
		}
		return strings.Join(ks, ",")
	}
	if got := kindsOf(heal); got != "heal.reboot,heal.replace" {
		t.Errorf("heal. webhook got %s", got)
	}
	if got := kindsOf(deploys); got != "deploy.started,deploy.succeeded,node.lost" {
		t.Errorf("deploy. webhook got %s", got)
	}
}

// Events already in the log when a webhook is added are not replayed to it;
// events after are sent.
func TestEventsBeforeTheWebhookAreNotReplayed(t *testing.T) {
	c := newCluster(t)
	r := newReceiver(t, c, nil)
	for i := range 5 {
		c.event(t0.Add(time.Duration(i)*time.Second), raftfsm.EventDeployFailed, raftfsm.SeverityError, "old failure", nil)
	}
	stop := startRun(t, c, testConfig(t))
	c.webhook(t0.Add(time.Minute), "first", r.URL(), raftfsm.WebhookGeneric)
	fresh := c.event(t0.Add(2*time.Minute), raftfsm.EventDeployFailed, raftfsm.SeverityError, "new failure", nil)
	testkit.WaitFor(t, 10*time.Second, "the new event", func() bool { return len(r.requests()) >= 1 })
	stop()
	got := r.generic(t)
	if len(got) != 1 || got[0].Seq != fresh || got[0].Message != "new failure" {
		t.Fatalf("got %+v, want only event %d", got, fresh)
	}
}

// A new leader (a second Run over the same replicated state) never sends an
// event the first one committed, even one the first never delivered.
func TestNewLeaderDoesNotResend(t *testing.T) {
	c := newCluster(t)
	r := newReceiver(t, c, nil)
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	for range 3 {
		c.event(t0.Add(time.Second), raftfsm.EventHealRestart, raftfsm.SeverityWarn, "restart", nil)
	}
	stop := startRun(t, c, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "the first leader's deliveries", func() bool { return len(r.requests()) == 3 })
	stop()
	cursor := c.cursor()

	startRun(t, c, testConfig(t))
	next := c.event(t0.Add(2*time.Second), raftfsm.EventNodeFound, raftfsm.SeverityInfo, "node-2 is back", nil)
	testkit.WaitFor(t, 10*time.Second, "the second leader's delivery", func() bool { return len(r.requests()) >= 4 })
	got := r.generic(t)
	if len(got) != 4 || got[3].Seq != next || got[2].Seq != cursor {
		t.Fatalf("after the new leader: %d deliveries (last seq %d), want 4 ending with %d", len(got), got[len(got)-1].Seq, next)
	}
}

// When the cursor cannot be committed (this node lost leadership), nothing
// is sent; once it can, the events go out once.
func TestNothingSentUntilTheCursorCommits(t *testing.T) {
	c := newCluster(t)
	r := newReceiver(t, c, nil)
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	c.setApplyErr(raftfsm.ErrNotLeader)
	base := c.applyCount()
	ev, err := c.fsm.ApplyCommand(1000, &raftfsm.AppendEvent{At: t0.Add(time.Second), Event: raftfsm.Event{Kind: raftfsm.EventNodeLost, Message: "node-1 lost"}})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.index = 1000
	c.mu.Unlock()
	startRun(t, c, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "three refused commits", func() bool { return c.applyCount() >= base+3 })
	if n := r.attemptCount(); n != 0 {
		t.Fatalf("%d requests sent while the cursor could not be committed", n)
	}
	c.setApplyErr(nil)
	testkit.WaitFor(t, 10*time.Second, "the delivery", func() bool { return len(r.requests()) == 1 })
	if got := r.generic(t)[0].Seq; got != ev.(uint64) {
		t.Fatalf("delivered seq %d, want %d", got, ev)
	}
}

// A deleted webhook gets nothing more; the others go on.
func TestDeletedWebhookStops(t *testing.T) {
	c := newCluster(t)
	gone := newReceiver(t, c, nil)
	stays := newReceiver(t, c, nil)
	c.webhook(t0, "gone", gone.URL(), raftfsm.WebhookGeneric)
	c.webhook(t0, "stays", stays.URL(), raftfsm.WebhookGeneric)
	startRun(t, c, testConfig(t))
	c.event(t0.Add(time.Second), raftfsm.EventNodeLost, raftfsm.SeverityError, "one", nil)
	testkit.WaitFor(t, 10*time.Second, "both deliveries", func() bool { return len(gone.requests()) == 1 && len(stays.requests()) == 1 })
	c.must(&raftfsm.DeleteWebhook{At: t0, ID: "gone"})
	c.event(t0.Add(2*time.Second), raftfsm.EventNodeLost, raftfsm.SeverityError, "two", nil)
	testkit.WaitFor(t, 10*time.Second, "the second delivery", func() bool { return len(stays.requests()) == 2 })
	if n := gone.attemptCount(); n != 1 {
		t.Fatalf("deleted webhook got %d requests, want 1", n)
	}
}

// A 4xx answer is permanent: one attempt, then the next event goes out.
func TestClientErrorIsNotRetried(t *testing.T) {
	c := newCluster(t)
	r := newReceiver(t, c, func(n int) int {
		if n == 1 {
			return 404
		}
		return 0
	})
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	c.event(t0.Add(time.Second), raftfsm.EventNodeLost, raftfsm.SeverityError, "one", nil)
	second := c.event(t0.Add(time.Second), raftfsm.EventNodeFound, raftfsm.SeverityInfo, "two", nil)
	startRun(t, c, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "the second event", func() bool { return len(r.requests()) == 1 })
	if got := r.generic(t)[0].Seq; got != second || r.attemptCount() != 2 {
		t.Fatalf("got seq %d after %d attempts, want seq %d after 2", got, r.attemptCount(), second)
	}
}

// A batch covers at most MaxBatch wanted events; the rest follow in the next.
func TestBatchesAreBounded(t *testing.T) {
	c := newCluster(t)
	r := newReceiver(t, c, nil)
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	for range 7 {
		c.event(t0.Add(time.Second), raftfsm.EventHealRestart, raftfsm.SeverityWarn, "restart", nil)
	}
	base := c.applyCount()
	cfg := testConfig(t)
	cfg.MaxBatch = 3
	startRun(t, c, cfg)
	testkit.WaitFor(t, 10*time.Second, "7 deliveries", func() bool { return len(r.requests()) == 7 })
	if n := c.applyCount() - base; n != 3 {
		t.Errorf("%d cursor commits for 7 events in batches of 3, want 3", n)
	}
	for i, p := range r.generic(t) {
		if i > 0 && p.Seq <= r.generic(t)[i-1].Seq {
			t.Fatalf("events out of order: %v", r.generic(t))
		}
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	c := newCluster(t)
	// A receiver that never answers: the worker must still stop.
	hang := make(chan struct{})
	r := newReceiver(t, c, func(int) int { <-hang; return 0 })
	t.Cleanup(func() { close(hang) })
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	c.event(t0.Add(time.Second), raftfsm.EventNodeLost, raftfsm.SeverityError, "lost", nil)
	stop := startRun(t, c, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "the hanging request", func() bool { return r.attemptCount() == 1 })
	stop() // fails the test if Run does not return
}
