package mesh

import "testing"

// TestEventQueueDropsOldest: a full queue never blocks; it drops the oldest
// events, counts them, and keeps the newest.
func TestEventQueueDropsOldest(t *testing.T) {
	q := newEventQueue(3)
	for i := range 10 {
		q.push(Event{Type: EventUpdate, Member: Member{ID: string(rune('a' + i))}})
	}
	if got := q.dropped.Load(); got != 7 {
		t.Errorf("dropped = %d, want 7", got)
	}
	var ids string
	for range 3 {
		ids += (<-q.ch).Member.ID
	}
	if ids != "hij" {
		t.Errorf("kept %q, want the newest hij", ids)
	}
	q.close()
	q.push(Event{}) // ignored after close, no panic
	if _, ok := <-q.ch; ok {
		t.Error("channel not closed")
	}
}

// TestSlowConsumerNeverBlocksGossip: with a one-event buffer and nobody
// reading, a cluster still converges and the drops are counted.
func TestSlowConsumerNeverBlocksGossip(t *testing.T) {
	c := startCluster(t, 9, 4, func(cfg *Config) { cfg.EventBuffer = 1 })
	for _, m := range c.meshes {
		if m.DroppedEvents() == 0 {
			t.Errorf("%s dropped no events with a 1-event buffer and 4 joins", m.cfg.NodeID)
		}
		if len(m.Events()) != 1 {
			t.Errorf("%s has %d queued events, want 1", m.cfg.NodeID, len(m.Events()))
		}
	}
}

func TestStringers(t *testing.T) {
	for s, want := range map[Status]string{StatusAlive: "alive", StatusSuspect: "suspect", StatusDead: "dead", StatusLeft: "left", Status(9): "status(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", int(s), s.String())
		}
	}
	for e, want := range map[EventType]string{EventJoin: "join", EventUpdate: "update", EventSuspect: "suspect", EventDead: "dead", EventLeave: "leave", EventType(9): "event(9)"} {
		if e.String() != want {
			t.Errorf("%d.String() = %q", int(e), e.String())
		}
	}
	for k, want := range map[ChangeKind]string{AddVoter: "add-voter", AddNonvoter: "add-nonvoter", Promote: "promote", Demote: "demote", Remove: "remove"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", int(k), k.String())
		}
	}
}
