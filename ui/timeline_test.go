package ui

import (
	"math"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestTimeline(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := func(d time.Duration) time.Time { return now.Add(-d) }
	history := []raftfsm.Segment{
		{Status: raftfsm.HealthHealthy, From: h(30 * time.Hour), To: h(20 * time.Hour), Count: 600},               // starts before the day
		{Status: raftfsm.HealthUnhealthy, From: h(20*time.Hour - time.Minute), To: h(18 * time.Hour), Count: 120}, // touches the next
		{Status: raftfsm.HealthHealthy, From: h(12 * time.Hour), To: h(6 * time.Hour), Count: 360},                // after a 6 h gap
		{Status: raftfsm.HealthDegraded, From: h(6*time.Hour - time.Minute), To: h(time.Minute), Count: 359},      // runs until now
	}
	day := buildTimeline(history, now, 24*time.Hour, "24 h")
	if len(day.Bars) != 4 {
		t.Fatalf("%d bars: %+v", len(day.Bars), day.Bars)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.5 }
	// The first bar is clipped to the window's start and lasts until the
	// next segment starts, a minute after its last check.
	if b := day.Bars[0]; b.X != 0 || !near(b.W, 1000*(4*60+1)/(24*60.0)) || b.Status != "healthy" {
		t.Errorf("first bar %+v", b)
	}
	// The unhealthy run ends at its last check: the next segment is 6 h later.
	if b := day.Bars[1]; !near(b.X, 1000*(4*60+1)/(24*60.0)) || !near(b.W, 1000*(2*60-1)/(24*60.0)) {
		t.Errorf("second bar %+v", b)
	}
	// The last one reaches now.
	if b := day.Bars[3]; !near(b.X+b.W, 1000) {
		t.Errorf("last bar ends at %.1f, want 1000", b.X+b.W)
	}
	for _, b := range day.Bars {
		if b.X < 0 || b.W <= 0 || b.X+b.W > 1000.01 {
			t.Errorf("bar out of bounds: %+v", b)
		}
	}
	// Coverage: 24 h minus the 6 h gap; up: all but the 2 h unhealthy.
	if !near(day.Covered, 100*18.0/24) {
		t.Errorf("covered %.2f%%", day.Covered)
	}
	if !near(day.Healthy, 100*(18*60-119)/(18*60.0)) {
		t.Errorf("healthy %.2f%%", day.Healthy)
	}
	week := buildTimeline(history, now, 7*24*time.Hour, "7 days")
	if len(week.Bars) != 4 || week.Bars[0].X <= 0 {
		t.Errorf("week %+v", week.Bars)
	}
	// A single check is still visible; nothing at all is "no data".
	one := buildTimeline([]raftfsm.Segment{{Status: "starting", From: h(time.Hour), To: h(time.Hour), Count: 1}}, now, 24*time.Hour, "")
	if len(one.Bars) != 1 || one.Bars[0].W < 1.5 {
		t.Errorf("single check %+v", one.Bars)
	}
	if empty := buildTimeline(nil, now, 24*time.Hour, ""); len(empty.Bars) != 0 || empty.Covered != 0 {
		t.Errorf("empty %+v", empty)
	}
	// Segments entirely outside the window are left out.
	old := buildTimeline([]raftfsm.Segment{{Status: "healthy", From: h(50 * time.Hour), To: h(49 * time.Hour), Count: 60}}, now, 24*time.Hour, "")
	if len(old.Bars) != 0 {
		t.Errorf("an old segment drawn: %+v", old.Bars)
	}
	// Hourly checks (a long health interval): no gaps between the runs.
	hourly := []raftfsm.Segment{
		{Status: "healthy", From: h(10 * time.Hour), To: h(5 * time.Hour), Count: 6},
		{Status: "unhealthy", From: h(4 * time.Hour), To: h(4 * time.Hour), Count: 1}, // a single check
		{Status: "degraded", From: h(3 * time.Hour), To: h(3 * time.Hour), Count: 1},
		{Status: "healthy", From: h(2 * time.Hour), To: h(time.Hour), Count: 2},
	}
	tl := buildTimeline(hourly, now, 24*time.Hour, "")
	for i := 0; i+1 < len(tl.Bars); i++ {
		if end := tl.Bars[i].X + tl.Bars[i].W; !near(end, tl.Bars[i+1].X) {
			t.Errorf("a gap between hourly runs %d and %d: %.1f to %.1f", i, i+1, end, tl.Bars[i+1].X)
		}
	}
	if b := tl.Bars[1]; !near(b.W, 1000/24.0) {
		t.Errorf("a single hourly check covers %.1f, want an hour (%.1f)", b.W, 1000/24.0)
	}
	if last := tl.Bars[len(tl.Bars)-1]; !near(last.X+last.W, 1000) {
		t.Errorf("the last hourly run stops at %.1f", last.X+last.W)
	}
}
