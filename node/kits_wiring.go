package node

import (
	"context"
	"fmt"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// checkCommandProto refuses, before anything is committed, a command some
// raft server cannot apply as this leader would: its type or a field it
// sets is newer than the protocol that server advertises (raftfsm's
// protocol.go), unless the field is marked ignorable.
func (a *Agent) checkCommandProto(ctx context.Context, cmd raftfsm.Command) error {
	if a.mesh == nil {
		return nil
	}
	servers, err := a.store.Servers(ctx)
	if err != nil {
		return fmt.Errorf("check the servers' protocol for %s: %w", cmd.Type(), err)
	}
	return protoConflictAt(raftfsm.NeededProtocol(cmd), cmd.Type().String(), servers, a.mesh.Member)
}

// undecodableBacklog bounds the undecodable entries waiting to be raised
// as events; beyond it they are only counted and logged (a replica that
// cannot decode the log fails on many entries, and one event says it).
const undecodableBacklog = 16

// reportUndecodable is the FSM's OnUndecodable (the FSM has counted the
// entry and logged it at error level): it counts it in the metrics and
// queues an event for runUndecodableEvents. It runs under the FSM's lock,
// so it never blocks.
func (a *Agent) reportUndecodable(index uint64, err error) {
	a.metrics.ObserveUndecodable()
	ev := raftfsm.Event{At: a.now(), Kind: raftfsm.EventEntryUndecodable, Severity: raftfsm.SeverityError, Node: a.cfg.NodeID,
		Message: fmt.Sprintf("node %s (protocol %d) could not decode log entry %d and skipped it: %v", a.cfg.NodeID, raftfsm.Protocol, index, err)}
	select {
	case a.undecodable <- ev:
	default:
	}
}

// runUndecodableEvents raises each queued undecodable entry as an event
// through the leader (a follower cannot commit it itself).
func (a *Agent) runUndecodableEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.undecodable:
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := a.report(rctx, &raftfsm.AppendEvent{At: ev.At, Event: ev}); err != nil {
				a.logger.Error("could not raise the event of an undecodable log entry", "err", err, "event", ev.Message)
			}
			cancel()
		}
	}
}
