package metrics

import "time"

// The agent feeds these as things happen. Each is safe for concurrent use.
// A negative duration is a caller's clock error: it is dropped and changes
// nothing. Unknown statuses and kinds are counted as "other".

// ObserveCommit records one raft commit: the time Store.Apply took on the
// leader (the agent calls it around every Apply that succeeded or failed).
func (m *Metrics) ObserveCommit(d time.Duration) { observe(m.commit, d) }

// ObserveApply records the time the state machine took to apply entries on
// this node (a batch counts once).
func (m *Metrics) ObserveApply(d time.Duration) { observe(m.apply, d) }

// ObserveProbeRTT records the round trip of one direct gossip probe
// (memberlist's PingDelegate.NotifyPingComplete).
func (m *Metrics) ObserveProbeRTT(d time.Duration) { observe(m.probeRTT, d) }

// ObserveReconcile records one reconcile pass of this node.
func (m *Metrics) ObserveReconcile(d time.Duration) { observe(m.reconcile, d) }

// ObserveHealth counts one health-check result: healthy, degraded,
// unhealthy or starting (raftfsm.Health*).
func (m *Metrics) ObserveHealth(status string) {
	m.health.WithLabelValues(healthLabel(status)).Inc()
}

// ObserveHeal counts one healing action: restart, reboot, reschedule or
// replace, with or without the "heal." prefix of the event kinds.
func (m *Metrics) ObserveHeal(kind string) {
	m.heal.WithLabelValues(healLabel(kind)).Inc()
}

// ObserveUndecodable counts one log entry this replica could not decode.
func (m *Metrics) ObserveUndecodable() { m.undecodable.Inc() }

type observer interface{ Observe(float64) }

func observe(o observer, d time.Duration) {
	if d < 0 {
		return
	}
	o.Observe(d.Seconds())
}
