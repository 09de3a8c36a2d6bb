package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestEventsOfLabelledContainer(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	svc := "ev-" + runtimetest.RandomSuffix()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, errs := rt.Events(ctx, map[string]string{runtime.LabelService: svc, runtimetest.LabelTest: t.Name()})

	// Another container, not matching the filter, must not show up.
	other := startApp(t, runtime.ContainerSpec{Labels: map[string]string{runtime.LabelService: svc + "-other"}})
	c := startApp(t, runtime.ContainerSpec{Labels: map[string]string{runtime.LabelService: svc}})
	if err := rt.Stop(testCtx(t, time.Minute), c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{"start", "kill", "die", "stop"}
	var got []string
	timeout := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-evs:
			if ev.ID == other.ID {
				t.Fatalf("event of a container outside the filter: %+v", ev)
			}
			if ev.ID != c.ID || ev.Name != c.Name || ev.Labels[runtime.LabelService] != svc || ev.At.IsZero() {
				t.Fatalf("event = %+v; want one of %s with its labels", ev, c.Name)
			}
			if _, ok := ev.Labels["image"]; ok {
				t.Fatalf("event labels carry Docker's attributes: %v", ev.Labels)
			}
			if ev.Action == "die" && ev.ExitCode != 0 {
				t.Fatalf("die exit code = %d, want 0", ev.ExitCode)
			}
			got = append(got, ev.Action)
		case err := <-errs:
			t.Fatalf("events stream failed: %v", err)
		case <-timeout:
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-evs:
		case <-deadline:
			t.Fatal("the event channel stayed open after ctx ended")
		}
	}
	if err, ok := <-errs; ok || err != nil {
		t.Fatalf("error channel after ctx end = %v, %v; want closed without error", err, ok)
	}
}

func TestEventsBadLabels(t *testing.T) {
	rt := runtime.DeadRuntime(t)
	evs, errs := rt.Events(context.Background(), map[string]string{"a=b": "c"})
	if err := <-errs; err == nil {
		t.Fatal("bad label accepted")
	}
	if _, ok := <-evs; ok {
		t.Fatal("event channel left open")
	}
}

func TestContainerEventConversion(t *testing.T) {
	m := events.Message{Action: "health_status: unhealthy", TimeNano: 1700000000123456789,
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "image": "img", runtime.LabelService: "web"}}}
	ev, ok := runtime.ContainerEventOf(m)
	if !ok || ev.Action != "health_status" || ev.Health != "unhealthy" || ev.Name != "web" || ev.ID != "abc" ||
		len(ev.Labels) != 1 || ev.Labels[runtime.LabelService] != "web" || ev.At.UnixNano() != 1700000000123456789 {
		t.Fatalf("health event = %+v, %t", ev, ok)
	}
	ev, ok = runtime.ContainerEventOf(events.Message{Action: "die", Time: 1700000000, Actor: events.Actor{ID: "abc", Attributes: map[string]string{"exitCode": "137"}}})
	if !ok || ev.ExitCode != 137 || ev.At.Unix() != 1700000000 {
		t.Fatalf("die event = %+v, %t", ev, ok)
	}
	for _, a := range []string{"exec_start: sh", "attach", "create", "rename"} {
		if _, ok := runtime.ContainerEventOf(events.Message{Action: events.Action(a)}); ok {
			t.Errorf("action %q passed on", a)
		}
	}
}
