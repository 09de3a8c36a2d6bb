package raftfsm

import (
	"testing"
	"time"
	"unsafe"
)

// BenchmarkHealthHistoryMemory measures what the health history costs at its
// worst: 1,000 instances, each flapping between healthy and unhealthy on
// every check for a week at the default 60 s interval (10,080 checks, every
// one starting a new segment), built through the FSM's own ReportHealth. It
// reports the heap the histories take, the size of the whole raft snapshot
// (what every node writes and what a new node receives), and checks that the
// week's timeline still says what happened: half of the checks healthy,
// spread over the whole week.
//
// Issue 22's baseline (a []Segment per instance capped at 4,096 segments):
// 352 MB of heap and a 410 MB snapshot, and only the last 2.8 days of a
// 60 s flapper were kept at all.
//
// It takes a few minutes; run it once:
// go test -run '^$' -bench HealthHistoryMemory -benchtime 1x ./raftfsm
func BenchmarkHealthHistoryMemory(b *testing.B) {
	const instances = 1000
	const interval = time.Minute
	checks := int(HistoryRetention / interval)
	for i := 0; i < b.N; i++ {
		f := newFixture(b)
		populate(b, f, instances)
		var byNode map[string][]string
		f.view(func(s *State) {
			byNode = map[string][]string{}
			for _, id := range SortedKeys(s.Instances) {
				byNode[s.Instances[id].Node] = append(byNode[s.Instances[id].Node], id)
			}
		})
		base := len(snapshotBytes(b, f.fsm))
		before := heapInUse()
		for k := 0; k < checks; k++ {
			at := t0.Add(time.Duration(k) * interval)
			status := HealthHealthy
			if k%2 == 1 {
				status = HealthUnhealthy
			}
			for _, node := range SortedKeys(byNode) {
				results := make([]HealthReport, 0, len(byNode[node]))
				for _, id := range byNode[node] {
					results = append(results, HealthReport{Instance: id, Status: status, CheckedAt: at})
				}
				f.must(&ReportHealth{At: at, Node: node, Results: results})
			}
		}
		heap := heapInUse() - before
		snap := len(snapshotBytes(b, f.fsm))
		var entries int
		var healthy, total int
		var first, last time.Time
		f.view(func(s *State) {
			for _, in := range s.Instances {
				entries += in.History.Len()
			}
			segs := s.Instances[byNode["node-1"][0]].History.Segments()
			first, last = segs[0].From, segs[len(segs)-1].To
			for _, seg := range segs {
				total += seg.Count
				if seg.Status == HealthHealthy {
					healthy += seg.Count
				}
			}
		})
		if total != checks || 2*healthy != checks {
			b.Fatalf("the history counts %d checks, %d healthy; want %d, half healthy", total, healthy, checks)
		}
		if !first.Equal(t0) || !last.Equal(t0.Add(time.Duration(checks-1)*interval)) {
			b.Fatalf("the history spans %s to %s, want the whole week from %s", first, last, t0)
		}
		b.ReportMetric(float64(unsafe.Sizeof(histEntry{})), "entry-B")
		b.ReportMetric(float64(entries)/instances, "entries/instance")
		b.ReportMetric(float64(heap)/instances, "heap-B/instance")
		b.ReportMetric(float64(heap)/1e6, "heap-MB/1000-instances")
		b.ReportMetric(float64(snap)/1e6, "snapshot-MB/1000-instances")
		b.ReportMetric(float64(snap-base)/instances, "history-snapshot-B/instance")
	}
}
