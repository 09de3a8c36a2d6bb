package ui

import (
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// timelineWidth is the width of a timeline in SVG user units; the bar
// scales to its box (no inline styles needed, which the CSP forbids).
const timelineWidth = 1000.0

// bar is one coloured stretch of a health timeline.
type bar struct {
	X, W   float64
	Status string
	Title  string
}

// timeline is a health history drawn over a window ending now.
type timeline struct {
	Window string
	Bars   []bar
	// Healthy is the share of the covered time the instance was healthy
	// (degraded counts as up); Covered the share of the window with data.
	Healthy float64
	Covered float64
}

// maxSegmentGap is how long a status is assumed to last past its last check
// when the next segment starts later: beyond it the bar shows "no data"
// (the node was down or the instance did not exist). When the checks come
// further apart (a long health interval), three intervals are allowed.
const maxSegmentGap = 15 * time.Minute

// gapAllowed is the longest silence after a check that still counts as its
// status: from the slowest check cadence the history shows.
func gapAllowed(history []raftfsm.Segment) time.Duration {
	gap := maxSegmentGap
	for _, seg := range history {
		if seg.Count > 1 {
			if every := seg.To.Sub(seg.From) / time.Duration(seg.Count-1); 3*every > gap {
				gap = 3 * every
			}
		}
	}
	return gap
}

// buildTimeline lays health segments out over [now-window, now]. Each
// segment lasts until the next one starts (a status holds until a check says
// otherwise), except across gaps longer than maxSegmentGap; the last one
// lasts until its last check, or until now when that is recent.
func buildTimeline(history []raftfsm.Segment, now time.Time, window time.Duration, label string) timeline {
	tl := timeline{Window: label}
	start := now.Add(-window)
	var up, covered time.Duration
	allowed := gapAllowed(history)
	for i, seg := range history {
		from, to := seg.From, seg.To
		if i+1 < len(history) {
			if next := history[i+1].From; next.Sub(seg.To) <= allowed {
				to = next
			}
		} else if now.Sub(seg.To) <= allowed {
			to = now
		}
		if to.Before(start) || from.After(now) {
			continue
		}
		if from.Before(start) {
			from = start
		}
		if to.After(now) {
			to = now
		}
		d := to.Sub(from)
		covered += d
		if seg.Status == raftfsm.HealthHealthy || seg.Status == raftfsm.HealthDegraded {
			up += d
		}
		x := timelineWidth * float64(from.Sub(start)) / float64(window)
		w := timelineWidth * float64(d) / float64(window)
		if w < 1.5 {
			w = 1.5 // a single check stays visible
		}
		if x+w > timelineWidth {
			x = timelineWidth - w
		}
		tl.Bars = append(tl.Bars, bar{X: x, W: w, Status: seg.Status,
			Title: fmt.Sprintf("%s from %s to %s (%d checks)", seg.Status, seg.From.UTC().Format("Jan 2 15:04"),
				seg.To.UTC().Format("Jan 2 15:04"), seg.Count)})
	}
	if covered > 0 {
		tl.Healthy = 100 * float64(up) / float64(covered)
	}
	tl.Covered = 100 * float64(covered) / float64(window)
	return tl
}
