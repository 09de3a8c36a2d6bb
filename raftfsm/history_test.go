package raftfsm

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// flap appends n checks every interval from start, status by pattern(i).
func flap(h History, start time.Time, interval time.Duration, n int, pattern func(i int) string) History {
	for i := range n {
		h = h.Append(pattern(i), start.Add(time.Duration(i)*interval))
	}
	return h
}

func alternate(i int) string {
	if i%2 == 1 {
		return HealthUnhealthy
	}
	return HealthHealthy
}

func TestHistoryRunLengths(t *testing.T) {
	var h History
	for i, st := range []string{HealthHealthy, HealthHealthy, HealthHealthy, HealthUnhealthy, HealthUnhealthy, HealthDegraded} {
		h = h.Append(st, t0.Add(time.Duration(i)*time.Minute))
	}
	h = h.Append("great", t0.Add(time.Hour)) // not a status: ignored
	want := []Segment{
		{Status: HealthHealthy, From: t0, To: t0.Add(2 * time.Minute), Count: 3},
		{Status: HealthUnhealthy, From: t0.Add(3 * time.Minute), To: t0.Add(4 * time.Minute), Count: 2},
		{Status: HealthDegraded, From: t0.Add(5 * time.Minute), To: t0.Add(5 * time.Minute), Count: 1},
	}
	if got := h.Segments(); !reflect.DeepEqual(got, want) {
		t.Fatalf("segments\n%+v\nwant\n%+v", got, want)
	}
	if last, ok := h.Last(); !ok || last != want[2] {
		t.Fatalf("last %+v %v", last, ok)
	}
	if _, ok := History(nil).Last(); ok {
		t.Fatal("an empty history has a last segment")
	}
}

// A container flapping on every check for a month stays bounded, keeps its
// newest changes at full resolution and the older ones as shares.
func TestHistoryFlappingIsBounded(t *testing.T) {
	const checks = 30 * 24 * 60
	var h History
	for i := range checks {
		h = h.Append(alternate(i), t0.Add(time.Duration(i)*time.Minute))
		if h.fine() > maxFineEntries {
			t.Fatalf("after %d checks %d fine entries, over %d", i+1, h.fine(), maxFineEntries)
		}
		if h.Len() > maxFineEntries+maxCoarseEntries {
			t.Fatalf("after %d checks %d entries, over %d", i+1, h.Len(), maxFineEntries+maxCoarseEntries)
		}
	}
	segs := h.Segments()
	for i := 1; i < len(segs); i++ {
		if segs[i].From.Before(segs[i-1].To) {
			t.Fatalf("segment %d (%+v) starts before the previous one ends (%+v)", i, segs[i], segs[i-1])
		}
	}
	// The newest changes are exact: one segment a check.
	fine := segs[len(segs)-h.fine():]
	for k, seg := range fine {
		i := checks - len(fine) + k
		if seg.Count != 1 || seg.Status != alternate(i) || !seg.From.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("fine segment %d is %+v, want check %d", k, seg, i)
		}
	}
}

// The week's timeline keeps every check and the share of each status in
// every coarse bucket, whatever the pattern.
func TestHistoryKeepsSharesOverAWeek(t *testing.T) {
	const checks = 7 * 24 * 60
	pattern := func(i int) string {
		switch {
		case i%4 == 3:
			return HealthUnhealthy
		case i%9 == 0:
			return HealthDegraded
		}
		return HealthHealthy
	}
	h := flap(nil, t0, time.Minute, checks, pattern)
	want := map[string]int{}
	for i := range checks {
		want[pattern(i)]++
	}
	got := map[string]int{}
	for _, seg := range h.Segments() {
		got[seg.Status] += seg.Count
		if seg.To.Before(seg.From) {
			t.Fatalf("segment %+v ends before it starts", seg)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("checks by status %v, want %v", got, want)
	}
	segs := h.Segments()
	if !segs[0].From.Equal(t0) || !segs[len(segs)-1].To.Equal(t0.Add((checks-1)*time.Minute)) {
		t.Fatalf("history spans %s..%s", segs[0].From, segs[len(segs)-1].To)
	}
	// Each coarse bucket's unhealthy share matches the checks it holds.
	for _, e := range h[:h.Len()-h.fine()] {
		if !e.coarse() {
			t.Fatal("a fine entry before the coarse ones end")
		}
		lo, hi := time.Unix(0, e.from), time.Unix(0, e.end())
		var n, bad int
		for i := range checks {
			at := t0.Add(time.Duration(i) * time.Minute)
			if !at.Before(lo) && !at.After(hi) {
				n++
				if pattern(i) == HealthUnhealthy {
					bad++
				}
			}
		}
		if uint64(n) != e.total() || uint32(bad) != e.counts[healthCode(HealthUnhealthy)] {
			t.Fatalf("bucket %s..%s holds %d checks (%d unhealthy), the checks there are %d (%d)", lo, hi, e.total(), e.counts[2], n, bad)
		}
	}
}

func TestHistoryCompactRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	statuses := healthCodes[:]
	for trial := range 50 {
		var h History
		at := t0
		for range r.IntN(3000) {
			at = at.Add(time.Duration(1+r.IntN(600)) * time.Second)
			h = h.Append(statuses[r.IntN(len(statuses))], at)
		}
		if trial%5 == 0 {
			h, _ = h.Purge(t0.Add(time.Duration(r.IntN(20)) * time.Hour))
		}
		got, err := decodeHistory(h.compact())
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if !reflect.DeepEqual(got, h) && !(len(got) == 0 && len(h) == 0) {
			t.Fatalf("trial %d: round trip changed the history (%d entries, got %d)", trial, len(h), len(got))
		}
	}
}

func TestHistoryDecodeRefusesGarbage(t *testing.T) {
	good := flap(nil, t0, time.Minute, 2000, alternate).compact()
	for _, s := range []string{"", "h1", "h2:AAAA", "h1:!!!", good[:len(good)-3], good + "AA", "h1:" + strings.Repeat("/", 40)} {
		if _, err := decodeHistory(s); err == nil {
			t.Errorf("decoded %q", s)
		}
	}
	var h History
	if err := json.Unmarshal([]byte(`"h1:garbage"`), &h); err == nil {
		t.Fatal("garbage history unmarshalled")
	}
}

func TestHistoryPurgeCoarse(t *testing.T) {
	h := flap(nil, t0, time.Minute, 3*24*60, alternate)
	cut := t0.Add(36 * time.Hour)
	out, purged := h.Purge(cut)
	if purged == 0 || out.Len() != h.Len()-purged {
		t.Fatalf("purged %d of %d, %d left", purged, h.Len(), out.Len())
	}
	for _, seg := range out.Segments() {
		if seg.From.Before(cut) {
			t.Fatalf("segment %+v starts before the cut %s", seg, cut)
		}
	}
	if same, n := out.Purge(cut); n != 0 || &same[0] != &out[0] {
		t.Fatal("a purge that removes nothing changed the history")
	}
}

// The API's JSON form is the segments; it reads back (as an earlier release
// wrote it) to the same segments.
func TestHistoryJSONIsSegments(t *testing.T) {
	h := flap(nil, t0, time.Minute, 10, func(i int) string { return healthCodes[i/3%4] })
	b, err := json.Marshal(Instance{ID: "x", History: h})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"history":[{"status":"healthy","from":"2026-`) {
		t.Fatalf("instance JSON %s", b)
	}
	var back Instance
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.History.Segments(), h.Segments()) {
		t.Fatalf("read back %+v, want %+v", back.History.Segments(), h.Segments())
	}
	b, _ = json.Marshal(Instance{ID: "x"})
	if strings.Contains(string(b), "history") {
		t.Fatalf("an empty history is written: %s", b)
	}
}

// A snapshot written by the previous release (format 1: histories as
// segments in the state) restores, with every check of its histories, and
// writes back as format 2, smaller.
func TestRestoreFormat1Snapshot(t *testing.T) {
	old, err := os.ReadFile("testdata/snapshot-format1.json")
	if err != nil {
		t.Fatal(err)
	}
	f := NewFSM(nil)
	if err := f.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatalf("restore a format 1 snapshot: %v", err)
	}
	key := ServiceKey(testWS, "shop", "prod", "web")
	want := []map[string]int{
		{HealthHealthy: 500, HealthUnhealthy: 500},
		{HealthHealthy: 1010 - 144, HealthDegraded: 144},
	}
	check := func(f *FSM) {
		f.View(func(s *State) {
			for slot, w := range want {
				in := s.Instances[InstanceID(key, slot)]
				got := map[string]int{}
				for _, seg := range in.History.Segments() {
					got[seg.Status] += seg.Count
				}
				if !reflect.DeepEqual(got, w) {
					t.Fatalf("instance %d: checks by status %v, want %v", slot, got, w)
				}
				if last, _ := in.History.Last(); !last.To.Equal(in.CheckedAt) {
					t.Fatalf("instance %d: the last segment ends %s, the last check was %s", slot, last.To, in.CheckedAt)
				}
			}
		})
	}
	check(f)
	data := snapshotBytes(t, f)
	var doc snapshotDocument
	if err := json.Unmarshal(data, &doc); err != nil || doc.Format != 2 || len(doc.Histories) != 2 {
		t.Fatalf("rewritten as format %d with %d histories (%v)", doc.Format, len(doc.Histories), err)
	}
	var oldDoc struct {
		State struct {
			Instances map[string]struct {
				History json.RawMessage `json:"history"`
			} `json:"instances"`
		} `json:"state"`
	}
	if err := json.Unmarshal(old, &oldDoc); err != nil {
		t.Fatal(err)
	}
	oldSize, newSize := 0, 0
	for id, in := range oldDoc.State.Instances {
		oldSize += len(in.History)
		newSize += len(doc.Histories[id])
	}
	if newSize*5 > oldSize {
		t.Fatalf("the histories take %d bytes in format 2, %d in format 1", newSize, oldSize)
	}
	g := NewFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	check(g)
	a, _ := json.Marshal(f.Clone())
	b, _ := json.Marshal(g.Clone())
	if !bytes.Equal(a, b) {
		t.Fatal("the format 2 snapshot restores to another state")
	}
	// A history for an instance the state does not have is refused.
	doc.Histories["ghost#0"] = doc.Histories[InstanceID(key, 0)]
	bad, _ := json.Marshal(doc)
	if err := NewFSM(nil).Restore(io.NopCloser(bytes.NewReader(bad))); err == nil || !strings.Contains(err.Error(), "ghost#0") {
		t.Fatalf("restore with a stray history: %v", err)
	}
}
