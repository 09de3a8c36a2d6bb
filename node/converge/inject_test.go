package converge

import (
	"maps"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestInjectedEnv(t *testing.T) {
	s := raftfsm.NewState()
	s.Nodes["node-2"] = &raftfsm.Node{ID: "node-2", PrivateIP: "10.10.0.5", Status: raftfsm.NodeActive}
	add := func(name string, spec raftfsm.ServiceSpec) {
		key := raftfsm.ServiceKey("abcdef", "shop", "prod", name)
		spec.Kind = raftfsm.KindStateful
		s.Services[key] = &raftfsm.Service{Key: key, WorkspaceID: "abcdef", Project: "shop", Env: "prod", Name: name, Spec: spec}
		s.Instances[key+"#0"] = &raftfsm.Instance{ID: key + "#0", Service: key, Node: "node-2"}
	}
	add("cache", raftfsm.ServiceSpec{Image: "redis:7", Port: 6379})
	add("db", raftfsm.ServiceSpec{Image: "postgres:16", Port: 5432, Vars: map[string]string{"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "p@ss"}})
	web := &raftfsm.Service{WorkspaceID: "abcdef", Project: "shop", Env: "prod", Name: "web", Key: "abcdef/shop/prod/web"}
	env, err := InjectedEnv(s, web, raftfsm.ServiceSpec{Uses: []string{"cache", "db", "missing"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if env["REDIS_URL"] != "redis://10.10.0.5:6379" || env["CACHE_HOST"] != "10.10.0.5" || env["DB_PORT"] != "5432" {
		t.Fatalf("env %v", env)
	}
	if env["DATABASE_URL"] != "postgres://shop:p%40ss@10.10.0.5:5432/shop?sslmode=disable" {
		t.Fatalf("DATABASE_URL %q", env["DATABASE_URL"])
	}

	// A tool named after a datastore is not one; an image recognised only by
	// its EXPOSE port is, once this node knows the image.
	add("ui", raftfsm.ServiceSpec{Image: "rediscommander/redis-commander:latest", Port: 8081})
	add("kv", raftfsm.ServiceSpec{Image: "acme/kv:1", Port: 7000})
	spec := raftfsm.ServiceSpec{Uses: []string{"ui", "kv"}}
	env, err = InjectedEnv(s, web, spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := env["REDIS_URL"]; ok || env["UI_ADDR"] != "10.10.0.5:8081" || env["KV_ADDR"] != "10.10.0.5:7000" {
		t.Fatalf("unknown images: env %v", env)
	}
	exposed := func(image string) []int {
		if image == "acme/kv:1" {
			return []int{6379}
		}
		return nil
	}
	if env, err = InjectedEnv(s, web, spec, nil, exposed); err != nil || env["REDIS_URL"] != "redis://10.10.0.5:7000" {
		t.Fatalf("kv exposes 6379: env %v, %v", env, err)
	}
}

// TestInjectByName: with discovery on, dependents get the dependency's
// name, which does not change when it moves.
func TestInjectByName(t *testing.T) {
	s := raftfsm.NewState()
	s.Nodes["n1"] = &raftfsm.Node{ID: "n1", PrivateIP: "10.10.0.5", Status: raftfsm.NodeActive}
	s.Nodes["n2"] = &raftfsm.Node{ID: "n2", PrivateIP: "10.10.0.6", Status: raftfsm.NodeActive}
	cacheKey := raftfsm.ServiceKey("aaaaaa", "shop", "prod", "cache")
	s.Services[cacheKey] = &raftfsm.Service{Key: cacheKey, WorkspaceID: "aaaaaa", Project: "shop", Env: "prod", Name: "cache",
		Spec: raftfsm.ServiceSpec{Kind: raftfsm.KindStateful, Image: "redis:7", Port: 6379}}
	s.Instances[raftfsm.InstanceID(cacheKey, 0)] = &raftfsm.Instance{ID: raftfsm.InstanceID(cacheKey, 0), Service: cacheKey, Node: "n1"}
	web := &raftfsm.Service{Key: raftfsm.ServiceKey("aaaaaa", "shop", "prod", "web"), WorkspaceID: "aaaaaa", Project: "shop", Env: "prod", Name: "web"}
	spec := raftfsm.ServiceSpec{Uses: []string{"cache"}}
	before, err := InjectEnv(s, web, spec, nil, nil, true)
	if err != nil || before["REDIS_URL"] != "redis://cache:6379" || before["CACHE_HOST"] != "cache" || before["CACHE_ADDR"] != "cache:6379" {
		t.Fatalf("by name: %v, %v", before, err)
	}
	s.Instances[raftfsm.InstanceID(cacheKey, 0)].Node = "n2"
	after, _ := InjectEnv(s, web, spec, nil, nil, true)
	if !maps.Equal(before, after) {
		t.Fatalf("a move changed the injected environment: %v -> %v", before, after)
	}
	byAddr, _ := InjectEnv(s, web, spec, nil, nil, false)
	if byAddr["CACHE_HOST"] != "10.10.0.6" {
		t.Fatalf("by address: %v", byAddr)
	}
}
