package mesh

import (
	"context"
	"math"
	"time"

	"github.com/hashicorp/memberlist"
)

// The member table: fed by memberlist's event delegate (join, update,
// dead-or-left) and corrected by periodic state reads (suspect, alive again,
// dead vs left, anything missed).

// handleJoin records n as alive and emits EventJoin.
func (m *Mesh) handleJoin(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		// The alive delegate refuses such members, so this is unexpected.
		m.logger.Warn("ignoring member with invalid metadata", "member", safeName(n.Name), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.gen++
	r, ok := m.members[n.Name]
	if !ok {
		r = &memberRecord{Member: Member{ID: n.Name}}
		m.members[n.Name] = r
	}
	r.gen = m.gen
	r.pendingGone = false
	r.Addr, r.Meta, r.Status, r.Since = n.Address(), meta, StatusAlive, m.now()
	m.emitLocked(EventJoin, r)
}

// handleUpdate records n's new metadata (and that it is alive) and emits
// EventUpdate.
func (m *Mesh) handleUpdate(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		m.logger.Warn("ignoring metadata update that does not validate", "member", safeName(n.Name), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.gen++
	r, ok := m.members[n.Name]
	if !ok {
		r = &memberRecord{Member: Member{ID: n.Name, Status: StatusAlive, Since: m.now()}}
		m.members[n.Name] = r
		r.gen = m.gen
		r.Addr, r.Meta = n.Address(), meta
		m.emitLocked(EventJoin, r)
		return
	}
	r.gen = m.gen
	r.Addr, r.Meta = n.Address(), meta
	if r.Status != StatusAlive || r.pendingGone {
		r.Status, r.Since, r.pendingGone = StatusAlive, m.now(), false
	}
	m.emitLocked(EventUpdate, r)
}

// handleLeave notes that n is dead or left. memberlist does not say which,
// so the record is marked dead provisionally (the safe reading for the voter
// policy) and a state read is requested; the event is emitted once it is
// known. This node's own leave is known to be a leave.
func (m *Mesh) handleLeave(n *memberlist.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.gen++
	r, ok := m.members[n.Name]
	if !ok {
		return
	}
	r.gen = m.gen
	if n.Name == m.cfg.NodeID {
		if r.Status != StatusLeft {
			m.setStatusLocked(r, StatusLeft, EventLeave)
		}
		return
	}
	if r.Status == StatusDead || r.Status == StatusLeft {
		return
	}
	r.pendingGone = true
	r.Status, r.Since = StatusDead, m.now()
	m.signalLocked()
	m.poke()
}

// setStatusLocked changes r's status, stamps Since and emits ev.
func (m *Mesh) setStatusLocked(r *memberRecord, s Status, ev EventType) {
	r.Status, r.Since, r.pendingGone = s, m.now(), false
	m.emitLocked(ev, r)
}

// emitLocked queues an event for r, wakes Changed waiters and logs it.
func (m *Mesh) emitLocked(t EventType, r *memberRecord) {
	m.events.push(Event{Type: t, Member: r.Member})
	m.signalLocked()
	level := m.logger.Info
	if t == EventUpdate {
		level = m.logger.Debug
	}
	level("member "+t.String(), "member", r.ID, "addr", r.Addr, "status", r.Status.String())
}

// signalLocked wakes everyone waiting on Changed.
func (m *Mesh) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// stateLoop reads memberlist's state table on request and periodically
// (see readInterval), until ctx ends (Shutdown).
func (m *Mesh) stateLoop(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTimer(m.cfg.StateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		took, rows := m.refresh()
		t.Reset(readInterval(m.cfg.StateInterval, rows, took))
	}
}

// Read pacing: reads stay under 1/readDutyFactor of wall time, but back off
// to no more than readMaxBackoff times the scaled interval.
const (
	readDutyFactor = 50
	readMaxBackoff = 10
)

// readInterval is the wait before the next periodic state read: the base
// interval scaled like memberlist's suspicion timeout (x max(1, log10 N)),
// so suspicions are still seen in large meshes, stretched to readDutyFactor
// times the last read's duration when reads get expensive (large tables,
// busy CPU), up to readMaxBackoff times the scaled interval.
func readInterval(base time.Duration, members int, took time.Duration) time.Duration {
	scaled := time.Duration(float64(base) * max(1, math.Log10(float64(max(members, 1)))))
	return min(max(scaled, readDutyFactor*took), readMaxBackoff*scaled)
}

// refresh reads the state table once and applies it; it returns how long
// the read took and how many members memberlist knows.
func (m *Mesh) refresh() (time.Duration, int) {
	m.mu.Lock()
	start := m.gen
	m.mu.Unlock()
	began := time.Now()
	rows, err := m.reader.read(m.self)
	took := time.Since(began)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return took, len(rows)
	}
	now := m.now()
	if err != nil {
		m.logger.Debug("state read failed", "err", err)
		// Do not leave a dead-or-left notice unresolved for long.
		for _, r := range m.members {
			if r.pendingGone && now.Sub(r.Since) >= pendingGoneReads*m.cfg.StateInterval {
				r.pendingGone = false
				m.emitLocked(EventDead, r)
			}
		}
	} else {
		m.applyStatesLocked(rows, start, now)
	}
	m.reapLocked(now)
	return took, len(rows)
}

// applyStatesLocked reconciles the member table with a state read that
// started when m.gen was start. Records changed by an event since then are
// newer than the read and left alone.
func (m *Mesh) applyStatesLocked(rows []nodeState, start uint64, now time.Time) {
	seen := make(map[string]bool, len(rows))
	for _, row := range rows {
		seen[row.name] = true
		if row.name == m.cfg.NodeID {
			continue
		}
		s := statusOf(row.state)
		r, ok := m.members[row.name]
		if ok && r.gen > start {
			continue
		}
		if !ok {
			// Missed join (should not happen): adopt alive or suspect
			// members whose metadata validates.
			if s != StatusAlive && s != StatusSuspect {
				continue
			}
			if checkPeer(row.name, row.meta) != nil {
				continue
			}
			meta, _ := decodeMeta(row.meta)
			r = &memberRecord{Member: Member{ID: row.name, Addr: row.addr, Meta: meta}}
			m.members[row.name] = r
			r.Status, r.Since = StatusAlive, now
			m.emitLocked(EventJoin, r)
			if s == StatusSuspect {
				m.setStatusLocked(r, StatusSuspect, EventSuspect)
			}
			continue
		}
		if r.pendingGone {
			switch s {
			case StatusDead:
				r.pendingGone = false
				m.emitLocked(EventDead, r) // Since stays at the notice
			case StatusLeft:
				r.pendingGone = false
				r.Status = StatusLeft
				m.emitLocked(EventLeave, r)
			}
			// Alive or suspect: a join event follows (or followed); wait.
			continue
		}
		if r.Status == s {
			continue
		}
		switch s {
		case StatusSuspect:
			if r.Status == StatusAlive {
				m.setStatusLocked(r, StatusSuspect, EventSuspect)
			}
		case StatusAlive:
			if r.Status == StatusSuspect {
				m.setStatusLocked(r, StatusAlive, EventUpdate) // refuted
			} else {
				m.setStatusLocked(r, StatusAlive, EventJoin)
			}
		case StatusDead:
			m.setStatusLocked(r, StatusDead, EventDead)
		case StatusLeft:
			m.setStatusLocked(r, StatusLeft, EventLeave)
		}
	}
	// Alive or suspect members memberlist no longer knows failed without a
	// notice we saw.
	for id, r := range m.members {
		if seen[id] || id == m.cfg.NodeID || r.gen > start {
			continue
		}
		if r.Status == StatusAlive || r.Status == StatusSuspect {
			m.setStatusLocked(r, StatusDead, EventDead)
		} else if r.pendingGone {
			r.pendingGone = false
			m.emitLocked(EventDead, r)
		}
	}
}

// reapLocked forgets dead and left members after TombstoneTimeout.
func (m *Mesh) reapLocked(now time.Time) {
	for id, r := range m.members {
		if id == m.cfg.NodeID || r.pendingGone {
			continue
		}
		if (r.Status == StatusDead || r.Status == StatusLeft) && now.Sub(r.Since) > m.cfg.TombstoneTimeout {
			delete(m.members, id)
			m.signalLocked()
		}
	}
}
