package mesh

import (
	"fmt"
	"time"
)

// Status is a member's liveness as this node sees it.
type Status int

// Member statuses. The numbers are internal; use String for display and JSON.
const (
	// StatusAlive: the member answers probes (directly or indirectly).
	StatusAlive Status = iota
	// StatusSuspect: a probe failed and the member has not refuted yet; it is
	// declared dead when its suspicion timeout runs out.
	StatusSuspect
	// StatusDead: the member failed (suspicion timed out) without leaving.
	StatusDead
	// StatusLeft: the member left gracefully (Leave).
	StatusLeft
)

// String returns "alive", "suspect", "dead" or "left".
func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	default:
		return fmt.Sprintf("status(%d)", int(s))
	}
}

// MarshalText encodes the status as its name, so JSON shows "alive".
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is one node of the mesh as this node sees it.
type Member struct {
	// ID is the node id (the memberlist node name, equal to Meta.ID).
	ID string
	// Addr is the member's gossip address, host:port.
	Addr string
	// Meta is what the member advertises about itself.
	Meta NodeMeta
	// Status is the member's liveness.
	Status Status
	// Since is when Status last changed, by this node's clock.
	Since time.Time
}

// EventType says what happened to a member.
type EventType int

// Event types, one per member transition.
const (
	// EventJoin: a member appeared, or came back after dead or left.
	EventJoin EventType = iota
	// EventUpdate: an alive member changed its metadata, or a suspect member
	// refuted the suspicion and is alive again.
	EventUpdate
	// EventSuspect: an alive member became suspect.
	EventSuspect
	// EventDead: a member failed (suspicion timed out).
	EventDead
	// EventLeave: a member left gracefully.
	EventLeave
)

// String returns "join", "update", "suspect", "dead" or "leave".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventSuspect:
		return "suspect"
	case EventDead:
		return "dead"
	case EventLeave:
		return "leave"
	default:
		return fmt.Sprintf("event(%d)", int(t))
	}
}

// MarshalText encodes the event type as its name.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Event is one member transition; Member is the member right after it.
type Event struct {
	Type   EventType
	Member Member
}
