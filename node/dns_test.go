package node

import (
	"slices"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func dnsState() *raftfsm.State {
	s := placementState("nyc3", "nyc3", "nyc3")
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		s.Nodes[id].PublicIP = []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}[i]
	}
	key := "abcdef/shop/prod/web"
	spec := raftfsm.ServiceSpec{Kind: raftfsm.KindService, Port: 8080, Hosts: []string{"shop.example.com"}, Replicas: 2}
	s.Services[key] = &raftfsm.Service{Key: key, Spec: spec, LiveGeneration: 1, Revisions: []raftfsm.Revision{{Generation: 1, Spec: spec}}}
	for i, n := range []string{"node-1", "node-2"} {
		id := raftfsm.InstanceID(key, i)
		s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Slot: i, Node: n, Phase: raftfsm.PhaseReady, Generation: 1, DesiredGeneration: 1}
	}
	s.Settings.UIHost = "mesh.example.com"
	return s
}

func TestDesiredDNS(t *testing.T) {
	s := dnsState()
	got := desiredDNS(s, "node-3")
	if w := got["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.1", "203.0.113.2"}) || !w.proxied {
		t.Fatalf("shop: %+v", w)
	}
	if w := got["mesh.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.3"}) {
		t.Fatalf("ui host: %+v", w)
	}
	// A rebooting node leaves the set while another serves the host...
	s.Nodes["node-1"].Status = raftfsm.NodeRebooting
	if w := desiredDNS(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.2"}) {
		t.Fatalf("failover: %+v", w)
	}
	// ...but the last one standing keeps its record.
	s.Nodes["node-2"].Status = raftfsm.NodeDead
	if w := desiredDNS(s, "node-3")["shop.example.com"]; len(w.ips) != 2 {
		t.Fatalf("all down: %+v", w)
	}
	// An instance that is not ready is not published.
	s.Nodes["node-1"].Status, s.Nodes["node-2"].Status = raftfsm.NodeActive, raftfsm.NodeActive
	s.Instances["abcdef/shop/prod/web#1"].Phase = raftfsm.PhaseStarting
	if w := desiredDNS(s, "node-3")["shop.example.com"]; !slices.Equal(w.ips, []string{"203.0.113.1"}) {
		t.Fatalf("not ready: %+v", w)
	}
}
