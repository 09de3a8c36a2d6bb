package raftfsm

import "time"

// Event severities.
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// Event kinds the state records. Webhooks filter on their prefixes.
const (
	EventDeployStarted   = "deploy.started"
	EventDeploySucceeded = "deploy.succeeded"
	EventDeployFailed    = "deploy.failed"
	EventRollback        = "deploy.rollback"
	EventUndeploy        = "deploy.undeploy"
	EventHealRestart     = "heal.restart"
	EventHealReboot      = "heal.reboot"
	EventHealReschedule  = "heal.reschedule"
	EventHealReplace     = "heal.replace"
	EventHealth          = "health.changed"
	EventNodeJoined      = "node.joined"
	EventNodeLost        = "node.lost"
	EventNodeFound       = "node.found"
	EventNodeRemoved     = "node.removed"
	EventNodeStatus      = "node.status"
	EventDNS             = "cloud.dns"
	EventCloud           = "cloud.intent"
	EventEdge            = "edge.failed"
	EventSnapshot        = "snapshot"
	EventCluster         = "cluster"
	EventUser            = "user"
	EventToken           = "token"
	// EventHealVeto: a restart the leader did not make, because another
	// node reached the container its own node calls unhealthy.
	EventHealVeto = "heal.veto"
	// EventDeployRefused: a node refused to run a generation as its agent
	// is configured (a stateful service published on a public address).
	EventDeployRefused = "deploy.refused"
	// EventEntryUndecodable: a node could not decode a log entry (a newer
	// command or field than its release knows, or a damaged entry): its
	// replica skipped it and may differ from the leader's.
	EventEntryUndecodable = "raft.undecodable"
)

// Event is one line of the cluster's history, shown in the UI and sent to webhooks.
type Event struct {
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Node     string    `json:"node,omitempty"`
	Service  string    `json:"service,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Deploy   string    `json:"deploy,omitempty"`
	Message  string    `json:"message"`
}

// MaxEvents bounds the event log; the oldest events drop off first. The log
// is trimmed in steps of eventTrimStep, so appending stays cheap.
const (
	MaxEvents     = 2000
	eventTrimStep = 250
)

// EventLog is the bounded, ordered event history. Sequence numbers only grow.
type EventLog struct {
	Items   []Event `json:"items"`
	NextSeq uint64  `json:"next_seq"`
}

// add appends e with the next sequence number and drops the oldest events
// beyond MaxEvents.
func (l *EventLog) add(e Event) {
	l.NextSeq++
	e.Seq = l.NextSeq
	if e.Severity == "" {
		e.Severity = SeverityInfo
	}
	l.Items = append(l.Items, e)
	if len(l.Items) > MaxEvents+eventTrimStep {
		l.Items = append(l.Items[:0:0], l.Items[len(l.Items)-MaxEvents:]...)
	}
}

// Since returns the events with a sequence number above seq, oldest first, at most limit (0 = all).
func (l *EventLog) Since(seq uint64, limit int) []Event {
	i := len(l.Items)
	for i > 0 && l.Items[i-1].Seq > seq {
		i--
	}
	out := l.Items[i:]
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return append([]Event(nil), out...)
}
