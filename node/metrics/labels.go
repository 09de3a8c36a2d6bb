package metrics

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Label values outside a known set: input from callers or from gossip
// never adds series beyond these.
const (
	labelOther     = "other"
	labelUnknown   = "unknown"
	labelUnmatched = "unmatched"
)

// Bounds of free-form label values (node ids, versions).
const (
	maxNodeIDLen  = 128
	maxVersionLen = 64
)

// healthStatuses are the health results ObserveHealth counts by name.
var healthStatuses = []string{
	raftfsm.HealthHealthy, raftfsm.HealthDegraded, raftfsm.HealthUnhealthy, raftfsm.HealthStarting, labelOther,
}

// healKinds are the healing actions ObserveHeal counts by name: the heal.*
// event kinds without their prefix.
var healKinds = []string{"restart", "reboot", "reschedule", "replace", labelOther}

// phases are the instance phases the container gauge reports; "health 1/3"
// counts as "health".
var phases = []string{
	raftfsm.PhasePending, raftfsm.PhasePulling, raftfsm.PhaseBuilding, raftfsm.PhaseStarting,
	raftfsm.PhaseChecking, raftfsm.PhaseRouting, raftfsm.PhaseReady, raftfsm.PhaseScheduled,
	raftfsm.PhaseRunning, raftfsm.PhaseFailed, raftfsm.PhaseStopped, labelUnknown,
}

// containerHealths are the health values the container gauge reports.
var containerHealths = []string{
	raftfsm.HealthHealthy, raftfsm.HealthDegraded, raftfsm.HealthUnhealthy, raftfsm.HealthStarting, labelUnknown,
}

// memberStatuses are the gossip statuses, in mesh.Status order.
var memberStatuses = []string{"alive", "suspect", "dead", "left", labelUnknown}

// raftStates are raft's roles as raft.RaftState.String spells them.
var raftStates = []string{"Leader", "Follower", "Candidate", "Shutdown"}

var httpMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions,
}

// oneOf returns v when it is in set, else fallback.
func oneOf(v string, set []string, fallback string) string {
	if slices.Contains(set, v) {
		return v
	}
	return fallback
}

func healthLabel(status string) string {
	return oneOf(strings.ToLower(strings.TrimSpace(status)), healthStatuses, labelOther)
}

func healLabel(kind string) string {
	k := strings.ToLower(strings.TrimSpace(kind))
	k = strings.TrimPrefix(k, "heal.")
	return oneOf(k, healKinds, labelOther)
}

// phaseLabel keeps the first word of a phase ("health 1/3" -> "health").
func phaseLabel(phase string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(phase), " ")
	return oneOf(p, phases, labelUnknown)
}

func containerHealthLabel(h string) string { return oneOf(h, containerHealths, labelUnknown) }

func methodLabel(m string) string { return oneOf(m, httpMethods, labelOther) }

// cleanLabel makes s a valid, bounded label value: invalid UTF-8 becomes
// U+FFFD and the value is cut to max bytes on a rune boundary.
func cleanLabel(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
