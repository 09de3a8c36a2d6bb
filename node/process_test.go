package node

import (
	"slices"
	"testing"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestProcessOptionsCarryCapAdd: a spec's cap_add (admin-approved at the
// API) reaches the container spec, and a spec without it adds nothing to
// the runtime's default capabilities.
func TestProcessOptionsCarryCapAdd(t *testing.T) {
	var cs runtime.ContainerSpec
	processOptions(&cs, raftfsm.ServiceSpec{Kind: raftfsm.KindService, CapAdd: []string{"NET_ADMIN"}, User: "1000"}, "b")
	if !slices.Equal(cs.CapAdd, []string{"NET_ADMIN"}) || cs.User != "1000" {
		t.Fatalf("container spec %+v", cs)
	}
	cs = runtime.ContainerSpec{}
	processOptions(&cs, raftfsm.ServiceSpec{Kind: raftfsm.KindService}, "b")
	if cs.CapAdd != nil {
		t.Fatalf("cap_add %v from a spec without any", cs.CapAdd)
	}
}
