package raftfsm

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrDeadlinePassed is a write refused because its caller's deadline had
// passed before it entered the log: it changed nothing, anywhere.
var ErrDeadlinePassed = fmt.Errorf("the request's deadline passed before it was applied: %w", context.DeadlineExceeded)

// Deadlined wraps a command with the absolute deadline of the request that
// asked for it. Every replica refuses the entry when the leader appended it
// to its log after that deadline: raft stamps each entry with the leader's
// clock at append time (raft.Log.AppendedAt) and replicates the stamp with
// the entry, so the check is the same on every replica and Apply reads no
// clock. A write that waited on a frozen leader, or in its queue, past the
// moment its caller gave up is therefore never applied.
type Deadlined struct {
	Deadline time.Time `json:"deadline"`
	// Entry is the wrapped command as Encode wrote it; never another Deadlined.
	Entry []byte `json:"entry"`
}

// Type is CmdDeadlined.
func (*Deadlined) Type() CommandType { return CmdDeadlined }

// WithDeadline wraps c so that it is refused when it reaches the log after
// deadline.
func WithDeadline(c Command, deadline time.Time) (*Deadlined, error) {
	if c.Type() == CmdDeadlined {
		return nil, fmt.Errorf("%w: a deadlined command cannot be wrapped again", ErrInvalid)
	}
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	return &Deadlined{Deadline: deadline.UTC(), Entry: data}, nil
}

// Inner decodes the wrapped command.
func (d *Deadlined) Inner() (Command, error) {
	if len(d.Entry) >= 2 && CommandType(d.Entry[1]) == CmdDeadlined {
		return nil, fmt.Errorf("%w: a deadlined command wraps another one", ErrInvalid)
	}
	return Decode(d.Entry)
}

// applyDeadlined applies the wrapped command. The deadline itself is
// checked by the FSM against the entry's append stamp (applyEntry), which
// this table entry does not see.
func applyDeadlined(s *State, d *Deadlined) (any, error) {
	inner, err := d.Inner()
	if err != nil {
		return nil, err
	}
	h, _ := handlerFor(inner.Type())
	return h.apply(s, inner)
}

// deadlineRefusal reports why an entry appended at appendedAt must not be
// applied, or nil. An entry without a stamp (replayed outside raft, tests)
// is not refused.
func deadlineRefusal(cmd Command, appendedAt time.Time) error {
	d, ok := cmd.(*Deadlined)
	if !ok || appendedAt.IsZero() || d.Deadline.IsZero() || !appendedAt.After(d.Deadline) {
		return nil
	}
	inner := "command"
	if c, err := d.Inner(); err == nil {
		inner = c.Type().String()
	}
	return fmt.Errorf("%s appended %s after its deadline: %w", inner, appendedAt.Sub(d.Deadline).Round(time.Millisecond), ErrDeadlinePassed)
}

// IsDeadlinePassed reports whether err is a write refused for its deadline.
func IsDeadlinePassed(err error) bool { return errors.Is(err, ErrDeadlinePassed) }
