package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The figures read from the Source at scrape time. The node label is added
// by the wrapping registerer.
var (
	descRaftLeader        = newDesc("raft", "leader", "1 when this node is the raft leader, else 0.")
	descRaftState         = newDesc("raft", "state", "1 for this node's current raft role, 0 for the others.", "state")
	descRaftTerm          = newDesc("raft", "term", "The current raft term.")
	descRaftLastIndex     = newDesc("raft", "last_log_index", "The last index in this node's raft log.")
	descRaftCommitIndex   = newDesc("raft", "commit_index", "The highest index this node knows to be committed.")
	descRaftAppliedIndex  = newDesc("raft", "applied_index", "The last index applied to this node's state machine.")
	descRaftApplyLag      = newDesc("raft", "apply_lag_entries", "Committed entries not yet applied here (commit_index - applied_index).")
	descRaftFSMPending    = newDesc("raft", "fsm_pending", "Batches queued for this node's state machine.")
	descRaftSnapshotIndex = newDesc("raft", "last_snapshot_index", "The index of this node's latest raft snapshot.")
	descRaftPeers         = newDesc("raft", "peers", "Other voters in this node's raft configuration.")
	descRaftLastContact   = newDesc("raft", "last_contact_seconds", "Time since this follower last heard from the leader (0 on the leader; absent before any contact).")

	descGossipMembers  = newDesc("gossip", "members", "Gossip members as this node sees them, by status.", "status")
	descGossipHealth   = newDesc("gossip", "health_score", "memberlist's awareness score: 0 is healthy; higher means this node misses acks and has slowed its probing.")
	descGossipVersions = newDesc("gossip", "member_versions", "Alive and suspect members by dropmesh version and highest command type (proto): a rolling upgrade is done when one row remains.", "version", "proto")

	descContainers       = newDesc("", "containers", "This node's instances by phase, from the local replica of the state.", "phase")
	descContainerHealth  = newDesc("", "container_health", "This node's instances by last health result.", "status")
	descContainersLooped = newDesc("", "containers_crash_looping", "This node's instances the leader marked crash-looping (restart back-off at its cap).")
	descStateIndex       = newDesc("", "state_index", "The raft index of the last command in this node's replica of the state.")
)

func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
}

// sourceCollector reads the Source on every scrape. It holds no state of
// its own, so concurrent scrapes are safe.
type sourceCollector struct {
	src    Source
	nodeID string
}

var _ prometheus.Collector = (*sourceCollector)(nil)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRaftLeader, descRaftState, descRaftTerm, descRaftLastIndex, descRaftCommitIndex,
		descRaftAppliedIndex, descRaftApplyLag, descRaftFSMPending, descRaftSnapshotIndex,
		descRaftPeers, descRaftLastContact,
		descGossipMembers, descGossipHealth, descGossipVersions,
		descContainers, descContainerHealth, descContainersLooped, descStateIndex,
	} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectRaft(ch)
	c.collectGossip(ch)
	c.collectContainers(ch)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

func (c *sourceCollector) collectRaft(ch chan<- prometheus.Metric) {
	st := c.src.RaftStats()
	if st == nil {
		return
	}
	state := st["state"]
	leader := 0.0
	if state == "Leader" {
		leader = 1
	}
	gauge(ch, descRaftLeader, leader)
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		gauge(ch, descRaftState, v, strings.ToLower(s))
	}
	num := func(d *prometheus.Desc, key string) (uint64, bool) {
		n, err := strconv.ParseUint(st[key], 10, 64)
		if err != nil {
			return 0, false
		}
		gauge(ch, d, float64(n))
		return n, true
	}
	num(descRaftTerm, "term")
	num(descRaftLastIndex, "last_log_index")
	commit, okC := num(descRaftCommitIndex, "commit_index")
	applied, okA := num(descRaftAppliedIndex, "applied_index")
	if okC && okA {
		lag := 0.0
		if commit > applied {
			lag = float64(commit - applied)
		}
		gauge(ch, descRaftApplyLag, lag)
	}
	num(descRaftFSMPending, "fsm_pending")
	num(descRaftSnapshotIndex, "last_snapshot_index")
	num(descRaftPeers, "num_peers")
	// raft reports "0" on the leader, "never" before any contact, else a
	// Go duration.
	switch lc := st["last_contact"]; lc {
	case "", "never":
	case "0":
		gauge(ch, descRaftLastContact, 0)
	default:
		if d, err := time.ParseDuration(lc); err == nil && d >= 0 {
			gauge(ch, descRaftLastContact, d.Seconds())
		}
	}
}

func (c *sourceCollector) collectGossip(ch chan<- prometheus.Metric) {
	members := c.src.Members()
	if members == nil {
		return
	}
	byStatus := make(map[string]int, len(memberStatuses))
	type verKey struct{ version, proto string }
	versions := map[verKey]int{}
	for _, mem := range members {
		s := oneOf(mem.Status.String(), memberStatuses, labelUnknown)
		byStatus[s]++
		if mem.Status == mesh.StatusAlive || mem.Status == mesh.StatusSuspect {
			v := cleanLabel(mem.Meta.Version, maxVersionLen)
			if v == "" {
				v = labelUnknown
			}
			versions[verKey{v, strconv.Itoa(mem.Meta.Proto)}]++
		}
	}
	for _, s := range memberStatuses {
		gauge(ch, descGossipMembers, float64(byStatus[s]), s)
	}
	gauge(ch, descGossipHealth, float64(c.src.GossipHealthScore()))
	for k, n := range versions {
		gauge(ch, descGossipVersions, float64(n), k.version, k.proto)
	}
}

func (c *sourceCollector) collectContainers(ch chan<- prometheus.Metric) {
	byPhase := make(map[string]int, len(phases))
	byHealth := make(map[string]int, len(containerHealths))
	looping := 0
	var index uint64
	c.src.View(func(s *raftfsm.State) {
		if s == nil {
			return
		}
		index = s.Index
		for _, in := range s.Instances {
			if in == nil || in.Node != c.nodeID {
				continue
			}
			byPhase[phaseLabel(in.Phase)]++
			byHealth[containerHealthLabel(in.Health)]++
			if in.CrashLooping {
				looping++
			}
		}
	})
	for _, p := range phases {
		gauge(ch, descContainers, float64(byPhase[p]), p)
	}
	for _, h := range containerHealths {
		gauge(ch, descContainerHealth, float64(byHealth[h]), h)
	}
	gauge(ch, descContainersLooped, float64(looping))
	gauge(ch, descStateIndex, float64(index))
}
