package raftfsm

import (
	"encoding/json"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkHealthHistoryMemory measures what the health history costs at its
// worst: 1,000 instances, each flapping between healthy and unhealthy on
// every check for a week, so every check starts a new segment and each
// history reaches the maxHistorySegments cap (4,096 segments: a week of
// flapping at any interval under 147 s fills it; the default 60 s makes
// 10,080 checks). The histories are built through the FSM's own
// ReportHealth, so the cap and the slices' real capacity are what count.
//
// Measured (linux/amd64): a Segment is 72 bytes, plus about 12 for its
// status string (decoded from each report, so not shared), about 84 bytes a
// segment: a full history holds about 344 KB of heap, so 1,000 worst-case
// instances take about 344 MB on every node (each holds the whole state),
// and about 410 MB in each raft snapshot (JSON, about 100 bytes a segment).
// A steady instance has one segment whatever its age. The 7-day purge does
// not bound this worst case (the cap does: a flapping instance keeps only
// its last 4,096 changes); it bounds the history of everything else.
//
// It takes about a minute; run it once:
// go test -run '^$' -bench HealthHistoryMemory -benchtime 1x ./raftfsm
func BenchmarkHealthHistoryMemory(b *testing.B) {
	const instances = 1000
	week := 7 * 24 * time.Hour
	step := week / maxHistorySegments
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
		before := heapInUse()
		for k := 0; k < maxHistorySegments; k++ { // every history exactly at the cap
			at := t0.Add(time.Duration(k) * step)
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
		var segments int
		var snapshot []byte
		f.view(func(s *State) {
			for _, in := range s.Instances {
				segments += len(in.History)
			}
			in := s.Instances[byNode["node-1"][0]]
			var err error
			if snapshot, err = json.Marshal(in.History); err != nil {
				b.Fatal(err)
			}
		})
		if segments != instances*maxHistorySegments {
			b.Fatalf("%d segments, want %d (the cap on each of %d instances)", segments, instances*maxHistorySegments, instances)
		}
		b.ReportMetric(float64(unsafe.Sizeof(Segment{})), "segment-B")
		b.ReportMetric(float64(heap)/instances, "heap-B/instance")
		b.ReportMetric(float64(heap)/1e6, "heap-MB/1000-instances")
		b.ReportMetric(float64(len(snapshot))*instances/1e6, "snapshot-MB/1000-instances")
	}
}
