package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
)

// ContainerEvent is one change of a container's life.
type ContainerEvent struct {
	ID   string
	Name string
	// Action is start, restart, die, stop, kill, destroy, oom or health_status.
	Action string
	// ExitCode is set on die.
	ExitCode int
	// Health is the new status on health_status ("healthy", "unhealthy").
	Health string
	// Labels are the container's labels.
	Labels map[string]string
	At     time.Time
}

// eventActions are the actions Events passes on.
var eventActions = []string{"start", "restart", "die", "stop", "kill", "destroy", "oom", "health_status"}

// eventAttributes are the attributes Docker adds to an event's actor next
// to the container's labels.
var eventAttributes = map[string]bool{"image": true, "name": true, "exitCode": true, "signal": true}

// Events streams the events of containers carrying all the given labels
// (an empty value matches any value) until ctx ends, then closes both
// channels. A failure of the stream is sent on the error channel (at most
// one) and ends it too: reconnecting, and listing what changed meanwhile,
// is the caller's job.
func (r *Runtime) Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error) {
	out := make(chan ContainerEvent, 16)
	errc := make(chan error, 1)
	if err := checkLabels(labels); err != nil {
		errc <- fmt.Errorf("container events: %w", err)
		close(out)
		close(errc)
		return out, errc
	}
	f := labelFilters(labels)
	f.Add("type", string(events.ContainerEventType))
	for _, a := range eventActions {
		f.Add("event", a)
	}
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		defer close(errc)
		defer close(out)
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if ctx.Err() == nil {
					errc <- fmt.Errorf("container events: %w", err)
				}
				return
			case m := <-msgs:
				ev, ok := containerEvent(m)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc
}

// containerEvent converts Docker's message; ok is false for actions we do
// not pass on.
func containerEvent(m events.Message) (ContainerEvent, bool) {
	action, health, _ := strings.Cut(string(m.Action), ":")
	known := false
	for _, a := range eventActions {
		known = known || a == action
	}
	if !known {
		return ContainerEvent{}, false
	}
	ev := ContainerEvent{ID: m.Actor.ID, Action: action, Health: strings.TrimSpace(health), Labels: map[string]string{}}
	for k, v := range m.Actor.Attributes {
		if !eventAttributes[k] {
			ev.Labels[k] = v
		}
	}
	ev.Name = m.Actor.Attributes["name"]
	if action == "die" {
		fmt.Sscan(m.Actor.Attributes["exitCode"], &ev.ExitCode)
	}
	if m.TimeNano != 0 {
		ev.At = time.Unix(0, m.TimeNano)
	} else {
		ev.At = time.Unix(m.Time, 0)
	}
	return ev, true
}
