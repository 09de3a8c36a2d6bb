package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestInstanceText(t *testing.T) {
	p := control.DeployProgress{Deploy: raftfsm.Deploy{Generation: 3}}
	for _, tc := range []struct {
		in   control.InstanceProgress
		done bool
		want string
	}{
		{control.InstanceProgress{Desired: 2, Generation: 2, Phase: "ready"}, false, "waiting"},
		{control.InstanceProgress{Desired: 3, Generation: 2, Phase: "ready"}, false, "pending"},
		{control.InstanceProgress{Desired: 3, Generation: 2, Phase: "pulling"}, false, "pulling"},
		{control.InstanceProgress{Desired: 3, Generation: 2, Phase: "health 2/3"}, false, "health 2/3"},
		{control.InstanceProgress{Desired: 3, Generation: 3, Phase: "ready"}, false, "ready"},
		{control.InstanceProgress{Desired: 2, Generation: 2, Phase: "failed", Error: "image: not found"}, true, "failed: image: not found"},
		{control.InstanceProgress{Desired: 2, Generation: 2, Phase: "ready"}, true, "on generation 2"},
	} {
		p.Done = tc.done
		if got := instanceText(p, tc.in); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestProgressLabelsSeveralInstancesOnOneNode(t *testing.T) {
	p := control.DeployProgress{Deploy: raftfsm.Deploy{Generation: 1}, Instances: []control.InstanceProgress{
		{Instance: "k#0", Node: "node-1", Desired: 1, Phase: "pulling"},
		{Instance: "k#1", Node: "node-1", Desired: 1, Phase: "starting"},
		{Instance: "k#2", Node: "node-22", Desired: 1, Phase: "pulling"},
	}}
	var b bytes.Buffer
	pr := newProgress(&b, false)
	pr.update(p)
	pr.update(p) // nothing changed: nothing printed
	want := "node-1#0  pulling\nnode-1#1  starting\nnode-22   pulling\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	var tty bytes.Buffer
	pt := newProgress(&tty, true)
	pt.update(p)
	pt.update(p)
	if strings.Count(tty.String(), "\x1b[3A") != 1 || strings.Count(tty.String(), "node-1#0") != 2 {
		t.Fatalf("terminal output %q", tty.String())
	}
}
