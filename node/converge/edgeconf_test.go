package converge

import (
	"slices"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// A node routes the hosts of the routed services it runs an instance of,
// to those instances' addresses; not another node's instances, not an
// unrouted service, never the UI host; the UI host goes to the local UI.
func TestEdgeRoutes(t *testing.T) {
	s := raftfsm.NewState()
	s.Settings.UIHost = "mesh.example.com"
	add := func(name string, spec raftfsm.ServiceSpec, nodes ...string) {
		key := raftfsm.ServiceKey("abcdef", "shop", "prod", name)
		spec.Kind = raftfsm.KindService
		s.Services[key] = &raftfsm.Service{Key: key, Spec: spec}
		for i, n := range nodes {
			id := raftfsm.InstanceID(key, i)
			s.Instances[id] = &raftfsm.Instance{ID: id, Service: key, Node: n}
		}
	}
	add("web", raftfsm.ServiceSpec{Port: 8080, Hosts: []string{"shop.example.com", "mesh.example.com"}}, "node-1", "node-1", "node-2")
	add("worker", raftfsm.ServiceSpec{}, "node-1")
	addrs := map[string]string{
		"abcdef/shop/prod/web#0": "10.0.0.1:30001", "abcdef/shop/prod/web#1": "10.0.0.1:30002",
		"abcdef/shop/prod/web#2": "10.0.0.2:30001", "abcdef/shop/prod/worker#0": "10.0.0.1:30009",
	}
	cfg, _ := EdgeRoutes(s, "node-1", addrs, "10.0.0.1:8080")
	if len(cfg.Routes) != 1 || cfg.Routes[0].Host != "shop.example.com" ||
		!slices.Equal(cfg.Routes[0].Upstreams, []string{"10.0.0.1:30001", "10.0.0.1:30002"}) {
		t.Fatalf("routes %+v", cfg.Routes)
	}
	if cfg.UIHost != "mesh.example.com" || cfg.UIUpstream != "10.0.0.1:8080" {
		t.Fatalf("ui %q -> %q", cfg.UIHost, cfg.UIUpstream)
	}
	if cfg, _ := EdgeRoutes(s, "node-1", addrs, ""); cfg.UIHost != "" {
		t.Fatal("a node without a UI routes the UI host")
	}
}
