package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Healing thresholds: restart after 3 unhealthy checks, power-cycle after 5 failed pings.
const (
	restartAfterUnhealthy = 3
	rebootAfterPings      = 5
)

// defaultDeadNodeGrace is how long a power-cycled node may stay silent
// before its services move and its droplet is replaced.
const defaultDeadNodeGrace = 3 * time.Minute

// runHealer is the leader's healing loop, once per health interval: ping
// every agent, then reboot, reschedule and replace as needed.
func (a *Agent) runHealer(ctx context.Context) {
	h := &healer{a: a}
	for {
		var interval time.Duration
		a.fsm.View(func(s *raftfsm.State) { interval = a.healthInterval(s) })
		if err := h.round(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("healing round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// healer holds what the leader remembers between rounds (never needed for
// correctness: a new leader starts afresh from the state).
type healer struct {
	a *Agent
	// vetoed remembers, per instance, the unhealthy streak a second opinion
	// already vetoed, so the veto is recorded once per streak (once per
	// leader: a new leader records a streak's veto again, once).
	vetoed map[string]unhealthyStreak
}

// unhealthyStreak identifies an instance's current run of unhealthy
// checks: a check that is not unhealthy ends it (the history starts a new
// segment) and so does a restart. A veto changes neither.
type unhealthyStreak struct {
	since       time.Time // the start of the history's last, unhealthy segment
	restartedAt time.Time
}

// streakOf is the unhealthy streak instance in is in (meaningful while its
// ConsecutiveUnhealthy is at the restart threshold or above).
func streakOf(in raftfsm.Instance) unhealthyStreak {
	st := unhealthyStreak{restartedAt: in.LastRestartAt}
	if last, ok := in.History.Last(); ok && last.Status == raftfsm.HealthUnhealthy {
		st.since = last.From
	}
	return st
}

func (s unhealthyStreak) equal(o unhealthyStreak) bool {
	return s.since.Equal(o.since) && s.restartedAt.Equal(o.restartedAt)
}

func (h *healer) round(ctx context.Context) error {
	if err := h.ping(ctx); err != nil {
		return err
	}
	if err := h.nodes(ctx); err != nil {
		return err
	}
	if err := h.reschedule(ctx); err != nil {
		return err
	}
	return h.finishDrains(ctx)
}

// runRestarts restarts unhealthy containers. It reacts to every state
// change, so a restart follows the third unhealthy result at once.
func (a *Agent) runRestarts(ctx context.Context) {
	h := &healer{a: a, vetoed: map[string]unhealthyStreak{}}
	a.every(ctx, "restarts", 5*time.Second, true, h.restarts)
}

// ping calls every other agent's /ping and commits the results that change
// something (a failure, or a success after failures).
func (h *healer) ping(ctx context.Context) error {
	a := h.a
	type target struct {
		id, api string
		failed  int
	}
	var targets []target
	var timeout time.Duration
	a.fsm.View(func(s *raftfsm.State) {
		timeout = min(a.healthInterval(s), 2*time.Second)
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			n := s.Nodes[id]
			if id != a.cfg.NodeID && n.API != "" {
				targets = append(targets, target{id, n.API, n.ConsecutiveFailedPings})
			}
		}
	})
	results := make([]raftfsm.PingResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func(i int, t target) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			results[i] = raftfsm.PingResult{Node: t.id, OK: a.peers.ping(pctx, t.api) == nil}
		}(i, t)
	}
	wg.Wait()
	var changes []raftfsm.PingResult
	for i, r := range results {
		if !r.OK || targets[i].failed > 0 {
			changes = append(changes, r)
		}
	}
	if len(changes) == 0 || ctx.Err() != nil {
		return nil
	}
	_, err := a.apply(ctx, &raftfsm.RecordPings{At: a.now(), Results: changes})
	return err
}

// nodes moves nodes through active -> rebooting -> dead and back.
func (h *healer) nodes(ctx context.Context) error {
	a := h.a
	now := a.now()
	type change struct {
		node   raftfsm.Node
		status raftfsm.NodeStatus
		reason string
		reboot bool
	}
	var changes []change
	canReboot := a.cloudReady()
	a.fsm.View(func(s *raftfsm.State) {
		grace := s.Settings.DeadNodeGrace.D()
		if grace == 0 {
			grace = defaultDeadNodeGrace
		}
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			n := *s.Nodes[id]
			if id == a.cfg.NodeID {
				if n.Status != raftfsm.NodeActive && n.Status != raftfsm.NodeDraining {
					changes = append(changes, change{n, raftfsm.NodeActive, "it leads the cluster", false})
				}
				continue
			}
			answered := n.ConsecutiveFailedPings == 0 && n.LastSeen.After(n.StatusSince)
			switch n.Status {
			case raftfsm.NodeActive:
				if n.ConsecutiveFailedPings >= rebootAfterPings {
					reason := fmt.Sprintf("%d pings in a row failed", n.ConsecutiveFailedPings)
					if canReboot && n.DropletID != 0 {
						changes = append(changes, change{n, raftfsm.NodeRebooting, reason, true})
					} else {
						changes = append(changes, change{n, raftfsm.NodeDead, reason + "; no droplet to power-cycle", false})
					}
				}
			case raftfsm.NodeRebooting:
				switch {
				case answered:
					changes = append(changes, change{n, raftfsm.NodeActive, "answering again after the power-cycle", false})
				case now.Sub(n.RebootedAt) > grace:
					changes = append(changes, change{n, raftfsm.NodeDead, fmt.Sprintf("silent %s after the power-cycle", grace), false})
				}
			case raftfsm.NodeDead:
				if answered {
					changes = append(changes, change{n, raftfsm.NodeActive, "answering again", false})
				}
			}
		}
	})
	for _, c := range changes {
		if c.reboot {
			if err := a.powerCycle(ctx, c.node, c.reason); err != nil {
				return err
			}
			continue
		}
		if _, err := a.apply(ctx, &raftfsm.SetNodeStatus{At: now, Node: c.node.ID, Status: c.status, Reason: c.reason}); err != nil {
			return err
		}
		if c.status == raftfsm.NodeDead {
			a.kickLeader() // the cloud duty replaces the droplet
		}
	}
	return nil
}

// reschedule moves the stateless instances of dead and draining nodes onto
// active ones, and flags stateful services stranded on dead nodes.
func (h *healer) reschedule(ctx context.Context) error {
	a := h.a
	type move struct{ instance, node, from, why string }
	var moves []move
	stranded := map[string]string{}
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Instances) {
			in := s.Instances[id]
			n, ok := s.Nodes[in.Node]
			if ok && n.Status != raftfsm.NodeDead && n.Status != raftfsm.NodeDraining {
				continue
			}
			svc := s.Services[in.Service]
			if svc.Spec.Kind == raftfsm.KindStateful {
				if ok && n.Status == raftfsm.NodeDraining {
					continue
				}
				if svc.Stranded == "" {
					stranded[svc.Key] = fmt.Sprintf("its node %s is dead and its volume cannot follow it; restore it or undeploy", in.Node)
				}
				continue
			}
			placement, err := deployplan.Place(s, svc.Key, svc.Spec)
			if err != nil || in.Slot >= len(placement) {
				continue
			}
			why := "dead"
			if ok {
				why = string(n.Status)
			}
			moves = append(moves, move{id, placement[in.Slot].Node, in.Node, why})
		}
	})
	for _, m := range moves {
		if _, err := a.apply(ctx, &raftfsm.MoveInstance{At: a.now(), Instance: m.instance, Node: m.node,
			Reason: "node " + m.from + " is " + m.why}); err != nil {
			return err
		}
		a.metrics.ObserveHeal("reschedule")
	}
	for _, key := range raftfsm.SortedKeys(stranded) {
		if _, err := a.apply(ctx, &raftfsm.SetStranded{At: a.now(), Service: key, Reason: stranded[key]}); err != nil {
			return err
		}
	}
	return nil
}

// restarts restarts containers unhealthy three checks in a row, after a
// second opinion from another node, with the back-off the state keeps.
func (h *healer) restarts(ctx context.Context) error {
	a := h.a
	now := a.now()
	type candidate struct {
		in     raftfsm.Instance
		path   string
		port   bool
		peer   string
		reason string
	}
	var cands []candidate
	streaks := map[string]bool{} // instances in an unhealthy streak long enough to act on
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Instances) {
			in := s.Instances[id]
			if in.ConsecutiveUnhealthy >= restartAfterUnhealthy {
				streaks[id] = true
			}
			if in.ConsecutiveUnhealthy < restartAfterUnhealthy || now.Before(in.NextRestartAt) || in.RestartNonce > in.RestartNonceSeen {
				continue
			}
			n, ok := s.Nodes[in.Node]
			if !ok || n.Status != raftfsm.NodeActive {
				continue
			}
			svc := s.Services[in.Service]
			spec, _ := svc.Revision(in.DesiredGeneration)
			// A copy that owns its history: the FSM appends to the
			// replica's in place.
			ci := *in
			ci.History = slices.Clone(in.History)
			c := candidate{in: ci, path: spec.Health.Path, port: spec.Port > 0 && in.Address != "",
				reason: fmt.Sprintf("%d checks in a row unhealthy: %s", in.ConsecutiveUnhealthy, in.HealthReason)}
			for _, pid := range raftfsm.SortedKeys(s.Nodes) {
				if p := s.Nodes[pid]; pid != in.Node && p.Status == raftfsm.NodeActive && p.API != "" {
					c.peer = p.API
					break
				}
			}
			cands = append(cands, c)
		}
	})
	for id := range h.vetoed {
		if !streaks[id] {
			delete(h.vetoed, id) // the streak ended (or the instance is gone)
		}
	}
	for _, c := range cands {
		if c.port && c.peer != "" {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := a.peers.probe(pctx, c.peer, c.in.Address, c.path)
			cancel()
			if err == nil {
				h.veto(ctx, c.in, now)
				continue
			}
			c.reason += "; confirmed from another node: " + err.Error()
		}
		delete(h.vetoed, c.in.ID)
		if _, err := a.apply(ctx, &raftfsm.RestartInstance{At: now, Instance: c.in.ID, Reason: c.reason}); err != nil {
			return err
		}
		a.metrics.ObserveHeal("restart")
	}
	return nil
}

// veto records, once per unhealthy streak, that a restart was not made
// because another node reaches the container. A failed record is logged
// and tried again on the next round (the streak is not marked recorded).
func (h *healer) veto(ctx context.Context, in raftfsm.Instance, now time.Time) {
	st := streakOf(in)
	if prev, ok := h.vetoed[in.ID]; ok && prev.equal(st) {
		return
	}
	_, err := h.a.apply(ctx, &raftfsm.AppendEvent{At: now, Event: raftfsm.Event{Kind: raftfsm.EventHealVeto,
		Severity: raftfsm.SeverityWarn, Node: in.Node, Service: in.Service, Instance: in.ID,
		Message: fmt.Sprintf("not restarting %s: its node reports it unhealthy %d checks in a row (%s), but another node reaches it fine (a fault in %s's own view?)",
			in.ID, in.ConsecutiveUnhealthy, in.HealthReason, in.Node)}})
	if err != nil {
		if ctx.Err() == nil {
			h.a.logger.Warn("record restart veto", "instance", in.ID, "err", err)
		}
		return
	}
	h.vetoed[in.ID] = st
}

// finishDrains removes drained nodes: once a draining node runs nothing,
// its droplet is deleted, it leaves the raft configuration and the state,
// and the desired node count shrinks by one.
func (h *healer) finishDrains(ctx context.Context) error {
	a := h.a
	var drained []raftfsm.Node
	var desired int
	a.fsm.View(func(s *raftfsm.State) {
		desired = s.Settings.DesiredNodes
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			if n := s.Nodes[id]; n.Status == raftfsm.NodeDraining && len(s.InstancesOn(id)) == 0 {
				drained = append(drained, *n)
			}
		}
	})
	for _, n := range drained {
		if c, err := a.cloudClients(); err == nil && c.do != nil && n.DropletID != 0 {
			params := map[string]string{"node": n.ID, "droplet_id": strconv.Itoa(n.DropletID)}
			var name string
			a.fsm.View(func(s *raftfsm.State) { name = dropletName(s.Settings, n.ID) })
			if err := a.intent(ctx, raftfsm.IntentDeleteDroplet, name, params, func(ctx context.Context) (raftfsm.CloudChanges, error) {
				return a.deleteDroplet(ctx, c, name, params)
			}); err != nil {
				return err
			}
		}
		if err := a.store.RemoveServer(ctx, n.ID); err != nil {
			a.logger.Warn("remove drained node from raft", "target", n.ID, "err", err)
		}
		// Removal is revocation: from this commit on, no handshake with
		// the node's certificates succeeds anywhere.
		if err := a.revokeNode(ctx, n.ID, "drained and removed"); err != nil {
			return err
		}
		if _, err := a.apply(ctx, &raftfsm.RemoveNode{At: a.now(), Node: n.ID, Reason: "drained and removed"}); err != nil {
			return err
		}
		if desired > 0 {
			desired--
			if _, err := a.apply(ctx, &raftfsm.UpdateSettings{At: a.now(), DesiredNodes: &desired}); err != nil {
				return err
			}
		}
	}
	return nil
}
