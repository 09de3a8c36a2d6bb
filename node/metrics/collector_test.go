package metrics

import (
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestRaftFiguresFromStats(t *testing.T) {
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		f.stats = map[string]string{
			"state": "Follower", "term": "7", "last_log_index": "120", "commit_index": "118",
			"applied_index": "115", "fsm_pending": "2", "last_snapshot_index": "100",
			"num_peers": "2", "last_contact": "42ms",
		}
	})
	m := newTestMetrics(t, src, "node-a")
	f := scrapeHandler(t, m.Handler())

	for name, want := range map[string]float64{
		"dropmesh_raft_leader":               0,
		"dropmesh_raft_term":                 7,
		"dropmesh_raft_last_log_index":       120,
		"dropmesh_raft_commit_index":         118,
		"dropmesh_raft_applied_index":        115,
		"dropmesh_raft_apply_lag_entries":    3,
		"dropmesh_raft_fsm_pending":          2,
		"dropmesh_raft_last_snapshot_index":  100,
		"dropmesh_raft_peers":                2,
		"dropmesh_raft_last_contact_seconds": 0.042,
	} {
		if got := f.value(t, name, L("node", "node-a")); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for state, want := range map[string]float64{"follower": 1, "leader": 0, "candidate": 0, "shutdown": 0} {
		if got := f.value(t, "dropmesh_raft_state", L("state", state)); got != want {
			t.Errorf("raft_state{state=%s} = %v, want %v", state, got, want)
		}
	}

	// The same node becomes leader: the next scrape says so.
	src.set(func(f *fakeSource) {
		f.stats["state"] = "Leader"
		f.stats["term"] = "8"
		f.stats["last_contact"] = "0"
		f.stats["applied_index"] = "118"
	})
	f = scrapeHandler(t, m.Handler())
	if got := f.value(t, "dropmesh_raft_leader", nil); got != 1 {
		t.Errorf("raft_leader after election = %v, want 1", got)
	}
	if got := f.value(t, "dropmesh_raft_term", nil); got != 8 {
		t.Errorf("raft_term after election = %v, want 8", got)
	}
	if got := f.value(t, "dropmesh_raft_last_contact_seconds", nil); got != 0 {
		t.Errorf("raft_last_contact_seconds on the leader = %v, want 0", got)
	}
	if got := f.value(t, "dropmesh_raft_apply_lag_entries", nil); got != 0 {
		t.Errorf("apply lag once caught up = %v, want 0", got)
	}
}

func TestRaftFiguresLeftOutWhenUnknown(t *testing.T) {
	src := newFakeSource()
	m := newTestMetrics(t, src, "n1")
	f := scrapeHandler(t, m.Handler())
	for _, name := range []string{"dropmesh_raft_leader", "dropmesh_raft_term", "dropmesh_gossip_members", "dropmesh_gossip_health_score"} {
		if _, ok := f[name]; ok {
			t.Errorf("%s is exported while raft and the mesh are not running", name)
		}
	}
	// The state figures are there from the start.
	if got := f.value(t, "dropmesh_containers", L("phase", "ready")); got != 0 {
		t.Errorf("containers{phase=ready} on an empty state = %v, want 0", got)
	}

	// Garbage in raft's stats: no gauge for what cannot be parsed, the
	// rest stays, the scrape does not fail.
	src.set(func(f *fakeSource) {
		f.stats = map[string]string{"state": "Candidate", "term": "x", "commit_index": "-1", "applied_index": "5", "last_contact": "never"}
	})
	f = scrapeHandler(t, m.Handler())
	for _, name := range []string{"dropmesh_raft_term", "dropmesh_raft_commit_index", "dropmesh_raft_apply_lag_entries", "dropmesh_raft_last_contact_seconds"} {
		if _, ok := f[name]; ok {
			t.Errorf("%s exported from an unparseable value", name)
		}
	}
	if got := f.value(t, "dropmesh_raft_applied_index", nil); got != 5 {
		t.Errorf("applied_index = %v, want 5", got)
	}
	if got := f.value(t, "dropmesh_raft_state", L("state", "candidate")); got != 1 {
		t.Errorf("raft_state{candidate} = %v, want 1", got)
	}
}

func TestGossipFigures(t *testing.T) {
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		f.score = 3
		f.members = []mesh.Member{
			{ID: "a", Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Version: "1.4.0", Proto: 40}},
			{ID: "b", Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Version: "1.4.0", Proto: 40}},
			{ID: "c", Status: mesh.StatusSuspect, Meta: mesh.NodeMeta{Version: "1.5.0", Proto: 42}},
			{ID: "d", Status: mesh.StatusDead, Meta: mesh.NodeMeta{Version: "1.3.0", Proto: 38}},
			{ID: "e", Status: mesh.StatusLeft},
			{ID: "f", Status: mesh.Status(99), Meta: mesh.NodeMeta{Version: "\xff\xfe" + string(make([]byte, 500)), Proto: 1}},
		}
	})
	m := newTestMetrics(t, src, "a")
	f := scrapeHandler(t, m.Handler())
	for status, want := range map[string]float64{"alive": 2, "suspect": 1, "dead": 1, "left": 1, "unknown": 1} {
		if got := f.value(t, "dropmesh_gossip_members", L("status", status)); got != want {
			t.Errorf("gossip_members{status=%s} = %v, want %v", status, got, want)
		}
	}
	if got := f.value(t, "dropmesh_gossip_health_score", nil); got != 3 {
		t.Errorf("gossip_health_score = %v, want 3", got)
	}
	if got := f.value(t, "dropmesh_gossip_member_versions", L("version", "1.4.0", "proto", "40")); got != 2 {
		t.Errorf("member_versions{1.4.0,40} = %v, want 2", got)
	}
	if got := f.value(t, "dropmesh_gossip_member_versions", L("version", "1.5.0", "proto", "42")); got != 1 {
		t.Errorf("member_versions{1.5.0,42} (suspect counts) = %v, want 1", got)
	}
	if _, ok := f.find("dropmesh_gossip_member_versions", L("version", "1.3.0")); ok {
		t.Error("a dead member's version is counted")
	}
	if n := len(f["dropmesh_gossip_member_versions"].GetMetric()); n != 2 {
		t.Errorf("member_versions has %d rows, want 2 (an unknown status is not alive)", n)
	}
}

func TestGossipVersionFromBadMetadataIsBounded(t *testing.T) {
	long := "\xff" + string(make([]byte, 300))
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		f.members = []mesh.Member{{ID: "x", Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Version: long}}}
	})
	m := newTestMetrics(t, src, "x")
	f := scrapeHandler(t, m.Handler())
	vs := f.labelValues("dropmesh_gossip_member_versions", "version")
	if len(vs) != 1 {
		t.Fatalf("member_versions rows = %v, want one", vs)
	}
	if len(vs[0]) > maxVersionLen {
		t.Errorf("version label is %d bytes, want at most %d", len(vs[0]), maxVersionLen)
	}
}

func TestContainersOfThisNode(t *testing.T) {
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		add := func(id, node, phase, health string, looping bool) {
			f.state.Instances[id] = &raftfsm.Instance{ID: id, Node: node, Phase: phase, Health: health, CrashLooping: looping}
		}
		add("i1", "me", raftfsm.PhaseReady, raftfsm.HealthHealthy, false)
		add("i2", "me", raftfsm.PhaseReady, raftfsm.HealthDegraded, false)
		add("i3", "me", "health 1/3", raftfsm.HealthStarting, false)
		add("i4", "me", raftfsm.PhaseFailed, raftfsm.HealthUnhealthy, true)
		add("i5", "me", "", "", false)
		add("i6", "me", "warp-speed", "purple", false)
		add("o1", "other", raftfsm.PhaseReady, raftfsm.HealthHealthy, false)
		add("o2", "other", raftfsm.PhaseFailed, raftfsm.HealthUnhealthy, true)
		f.state.Instances["nil"] = nil
		f.state.Index = 77
	})
	m := newTestMetrics(t, src, "me")
	f := scrapeHandler(t, m.Handler())
	for phase, want := range map[string]float64{"ready": 2, "health": 1, "failed": 1, "unknown": 2, "running": 0, "pending": 0} {
		if got := f.value(t, "dropmesh_containers", L("phase", phase)); got != want {
			t.Errorf("containers{phase=%s} = %v, want %v", phase, got, want)
		}
	}
	for h, want := range map[string]float64{"healthy": 1, "degraded": 1, "starting": 1, "unhealthy": 1, "unknown": 2} {
		if got := f.value(t, "dropmesh_container_health", L("status", h)); got != want {
			t.Errorf("container_health{status=%s} = %v, want %v", h, got, want)
		}
	}
	if got := f.value(t, "dropmesh_containers_crash_looping", nil); got != 1 {
		t.Errorf("containers_crash_looping = %v, want 1 (only this node's)", got)
	}
	if got := f.value(t, "dropmesh_state_index", nil); got != 77 {
		t.Errorf("state_index = %v, want 77", got)
	}
	if n := len(f["dropmesh_containers"].GetMetric()); n != len(phases) {
		t.Errorf("containers has %d rows, want the %d known phases", n, len(phases))
	}

	// A change in the state shows in the next scrape.
	src.set(func(f *fakeSource) {
		f.state.Instances["i3"].Phase = raftfsm.PhaseReady
		f.state.Instances["i3"].Health = raftfsm.HealthHealthy
	})
	f = scrapeHandler(t, m.Handler())
	if got := f.value(t, "dropmesh_containers", L("phase", "ready")); got != 3 {
		t.Errorf("containers{phase=ready} after the check passed = %v, want 3", got)
	}
	if got := f.value(t, "dropmesh_container_health", L("status", "healthy")); got != 2 {
		t.Errorf("container_health{healthy} after the check passed = %v, want 2", got)
	}
}

func TestConcurrentScrapesWhileStateChanges(t *testing.T) {
	src := newFakeSource()
	src.set(func(f *fakeSource) { f.stats = map[string]string{"state": "Leader", "term": "1"} })
	m := newTestMetrics(t, src, "me")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			src.set(func(f *fakeSource) {
				id := string(rune('a' + i%26))
				f.state.Instances[id] = &raftfsm.Instance{ID: id, Node: "me", Phase: raftfsm.PhaseReady}
			})
			m.ObserveHealth(raftfsm.HealthHealthy)
			m.ObserveCommit(time.Millisecond)
		}
	}()
	for range 20 {
		scrapeHandler(t, m.Handler())
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writer did not finish")
	}
	f := scrapeHandler(t, m.Handler())
	if got := f.value(t, "dropmesh_health_checks_total", L("status", "healthy")); got != 200 {
		t.Errorf("health_checks_total{healthy} = %v, want 200", got)
	}
	if got := f.value(t, "dropmesh_containers", L("phase", "ready")); got != 26 {
		t.Errorf("containers{ready} = %v, want 26", got)
	}
}
