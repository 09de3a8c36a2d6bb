package metrics

import (
	"math"
	"testing"
	"time"
)

func TestObserversCountAndTime(t *testing.T) {
	m := newTestMetrics(t, nil, "n1")

	m.ObserveCommit(2 * time.Millisecond)
	m.ObserveCommit(8 * time.Millisecond)
	m.ObserveCommit(-time.Second) // a clock step: dropped
	m.ObserveApply(100 * time.Microsecond)
	m.ObserveProbeRTT(700 * time.Microsecond)
	m.ObserveReconcile(1500 * time.Millisecond)
	m.ObserveReconcile(-1)

	m.ObserveHealth("healthy")
	m.ObserveHealth("healthy")
	m.ObserveHealth(" Unhealthy ")
	m.ObserveHealth("degraded")
	m.ObserveHealth("on fire") // not a status: other
	m.ObserveHealth("")

	m.ObserveHeal("heal.restart")
	m.ObserveHeal("restart")
	m.ObserveHeal("heal.reboot")
	m.ObserveHeal("replace")
	m.ObserveHeal("heal.self-destruct")

	f := scrapeHandler(t, m.Handler())
	for _, c := range []struct {
		name    string
		count   uint64
		sumSecs float64
	}{
		{"dropmesh_raft_commit_duration_seconds", 2, 0.010},
		{"dropmesh_raft_apply_duration_seconds", 1, 0.0001},
		{"dropmesh_gossip_probe_rtt_seconds", 1, 0.0007},
		{"dropmesh_reconcile_duration_seconds", 1, 1.5},
	} {
		n, sum := f.histogram(t, c.name, L("node", "n1"))
		if n != c.count || math.Abs(sum-c.sumSecs) > 1e-9 {
			t.Errorf("%s: count %d sum %v, want %d and %v", c.name, n, sum, c.count, c.sumSecs)
		}
	}
	for status, want := range map[string]float64{"healthy": 2, "unhealthy": 1, "degraded": 1, "starting": 0, "other": 2} {
		if got := f.value(t, "dropmesh_health_checks_total", L("status", status)); got != want {
			t.Errorf("health_checks_total{status=%s} = %v, want %v", status, got, want)
		}
	}
	if n := len(f["dropmesh_health_checks_total"].GetMetric()); n != len(healthStatuses) {
		t.Errorf("health_checks_total has %d series, want %d: unknown statuses must not add series", n, len(healthStatuses))
	}
	for kind, want := range map[string]float64{"restart": 2, "reboot": 1, "replace": 1, "reschedule": 0, "other": 1} {
		if got := f.value(t, "dropmesh_heal_actions_total", L("kind", kind)); got != want {
			t.Errorf("heal_actions_total{kind=%s} = %v, want %v", kind, got, want)
		}
	}
}

func TestCommitBuckets(t *testing.T) {
	m := newTestMetrics(t, nil, "n1")
	m.ObserveCommit(3 * time.Millisecond)
	m.ObserveCommit(3 * time.Second)
	f := scrapeHandler(t, m.Handler())
	mt, ok := f.find("dropmesh_raft_commit_duration_seconds", nil)
	if !ok {
		t.Fatal("no commit histogram")
	}
	for _, b := range mt.Histogram.GetBucket() {
		var want uint64
		switch {
		case b.GetUpperBound() >= 3:
			want = 2
		case b.GetUpperBound() >= 0.003:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v has %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}
