package notify

import (
	"fmt"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// BenchmarkPlan measures one planning pass over a full event log
// (raftfsm.MaxEvents) for five webhooks: the work of every state change.
func BenchmarkPlan(b *testing.B) {
	kinds := []string{raftfsm.EventHealth, raftfsm.EventDeployFailed, raftfsm.EventHealRestart, raftfsm.EventDeploySucceeded}
	events := make([]raftfsm.Event, raftfsm.MaxEvents)
	for i := range events {
		events[i] = raftfsm.Event{Seq: uint64(i + 1), Kind: kinds[i%len(kinds)], At: t0, Message: "m"}
	}
	var hooks []raftfsm.Webhook
	for i := range 5 {
		hooks = append(hooks, raftfsm.Webhook{ID: fmt.Sprint(i), Format: raftfsm.WebhookGeneric})
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		plan(events, hooks, "c", len(events))
	}
	b.ReportMetric(float64(len(events)*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDelivery measures events delivered end to end (cursor commit on
// a real FSM, then HTTP POST to a local receiver), per event.
func BenchmarkDelivery(b *testing.B) {
	c := newCluster(b)
	r := newReceiver(b, c, nil)
	c.webhook(t0, "ops", r.URL(), raftfsm.WebhookGeneric)
	cfg := testConfig(b)
	cfg.Logger = nil
	startRun(b, c, cfg)
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		c.event(t0.Add(time.Second), raftfsm.EventHealRestart, raftfsm.SeverityWarn, "restart", nil)
		for len(r.requests()) < i+1 {
			select {
			case <-r.arrived:
			case <-time.After(10 * time.Second):
				b.Fatalf("event %d not delivered in 10 s", i)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/event")
}
