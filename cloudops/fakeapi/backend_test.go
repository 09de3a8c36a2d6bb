package fakeapi

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

func TestBackendSeesTheDropletsLife(t *testing.T) {
	rec := &recorder{}
	s, url := start(t, Options{Backend: rec, ActionDelay: 5 * time.Millisecond})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	s.WaitIdle()
	want := []string{fmt.Sprintf("start %d node-1 127.0.0.2 active", d.ID)}
	if got := rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("after create: %v, want %v", got, want)
	}
	steps := []struct {
		run  func() (*godo.Action, error)
		call string
	}{
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.PowerCycle(ctx(t), d.ID); return a, err }, fmt.Sprintf("restart %d", d.ID)},
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.Reboot(ctx(t), d.ID); return a, err }, fmt.Sprintf("restart %d", d.ID)},
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.PowerOff(ctx(t), d.ID); return a, err }, fmt.Sprintf("stop %d", d.ID)},
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.PowerOn(ctx(t), d.ID); return a, err }, fmt.Sprintf("start %d node-1 127.0.0.2 active", d.ID)},
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.Shutdown(ctx(t), d.ID); return a, err }, fmt.Sprintf("stop %d", d.ID)},
		// A reboot of a droplet that is off starts it.
		{func() (*godo.Action, error) { a, _, err := c.DropletActions.Reboot(ctx(t), d.ID); return a, err }, fmt.Sprintf("start %d node-1 127.0.0.2 active", d.ID)},
	}
	for i, st := range steps {
		started, err := st.run()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if a := waitAction(t, c, started.ID); a.Status != "completed" {
			t.Fatalf("step %d: action %+v", i, a)
		}
		s.WaitIdle()
		want = append(want, st.call)
		if got := rec.Calls(); !slices.Equal(got, want) {
			t.Fatalf("step %d: calls %v, want %v", i, got, want)
		}
	}
	if _, err := c.Droplets.Delete(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	s.WaitIdle()
	want = append(want, fmt.Sprintf("stop %d", d.ID))
	if got := rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("after delete: %v, want %v", got, want)
	}
}

func TestBackendErrorsAreNotFatal(t *testing.T) {
	rec := &recorder{fail: true}
	s, url := start(t, Options{Backend: rec})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	a, _, err := c.DropletActions.Reboot(ctx(t), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := waitAction(t, c, a.ID); got.Status != "completed" {
		t.Fatalf("reboot with a failing backend: %+v", got)
	}
	s.WaitIdle()
	if n := len(rec.Calls()); n != 2 {
		t.Fatalf("backend calls %v", rec.Calls())
	}
}

func TestDeleteBeforeActiveNeverStarts(t *testing.T) {
	rec := &recorder{}
	s, url := start(t, Options{Backend: rec, ActionDelay: 200 * time.Millisecond})
	c := doClient(t, url, DefaultToken)
	d, resp, err := c.Droplets.Create(ctx(t), createReq("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Droplets.Delete(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	if a := waitAction(t, c, resp.Links.Actions[0].ID); a.Status != "errored" {
		t.Fatalf("create action of a deleted droplet: %+v", a)
	}
	s.WaitIdle()
	if got := rec.Calls(); len(got) != 0 {
		t.Fatalf("backend saw %v for a droplet deleted while new", got)
	}
}
