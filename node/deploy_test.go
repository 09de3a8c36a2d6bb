package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// runtimeCluster is a one-node cluster with Docker and the built-in proxy edge.
func runtimeCluster(t *testing.T) (*testCluster, *runtime.Runtime) {
	t.Helper()
	rt := runtime.NewTestRuntime(t)
	c := startCluster(t, 1, func(i int, cfg *Config) { cfg.NoRuntime = false })
	t.Cleanup(func() { removeClusterContainers(t, rt, c) })
	return c, rt
}

// removeClusterContainers removes whatever the cluster's agents left.
func removeClusterContainers(t testing.TB, rt *runtime.Runtime, c *testCluster) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := rt.List(ctx, map[string]string{runtime.LabelManaged: "true"})
	if err != nil {
		return
	}
	for _, ctr := range list {
		for _, n := range c.nodes {
			if strings.HasSuffix(strings.TrimSuffix(ctr.Name, ctr.Name[max(0, strings.LastIndex(ctr.Name, "-g")):]), n.cfg.ContainerSuffix) ||
				strings.Contains(ctr.Name, n.cfg.ContainerSuffix) {
				_ = rt.Remove(ctx, ctr.ID)
			}
		}
	}
}

func webSpec(image string) raftfsm.ServiceSpec {
	return raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "web", Kind: raftfsm.KindService, Image: image, Port: 8080,
		Hosts: []string{"web.example.test"}, Replicas: 1, Health: raftfsm.HealthSpec{Path: "/health"}}
}

// deploy submits spec on the leader and waits for the deploy to finish.
func (c *testCluster) deploy(spec raftfsm.ServiceSpec) raftfsm.Deploy {
	c.t.Helper()
	leader := c.leader()
	res, err := leader.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec, Actor: "test"})
	if err != nil {
		c.t.Fatalf("deploy %s: %v", spec.Service, err)
	}
	var d raftfsm.Deploy
	c.waitState(leader, 90*time.Second, "deploy "+res.DeployID+" to finish", func(s *raftfsm.State) bool {
		p, ok := control.DeployProgressOf(s, res.DeployID)
		d = p.Deploy
		return ok && p.Done
	})
	return d
}

// edgeGet requests host through node n's edge.
func edgeGet(n *testNode, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", fmt.Sprintf("http://%s:%d%s", n.cfg.BindIP, n.cfg.EdgePort, path), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestDeployUpdateRollbackUndeploy(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	v1 := runtime.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	v2 := runtime.BuildTestImage(t, rt, "v2", map[string]string{"VERSION": "v2"})

	// Deploy: healthy, routed, named and labelled as DESIGN.md says.
	if d := c.deploy(webSpec(v1)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("first deploy %s: %s", d.Status, d.Reason)
	}
	code, body, err := edgeGet(n, "web.example.test", "/")
	if err != nil || code != 200 || !strings.Contains(body, "v1") {
		t.Fatalf("through the edge: %d %q %v", code, body, err)
	}
	var in raftfsm.Instance
	n.agent.View(func(s *raftfsm.State) { in = *s.ServiceInstances(s.Services[firstKey(s)].Key)[0] })
	ctr, err := rt.Inspect(context.Background(), in.Container)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{runtime.LabelWorkspace, runtime.LabelProject, runtime.LabelEnv, runtime.LabelService, runtime.LabelNode, runtime.LabelGeneration} {
		if ctr.Labels[l] == "" {
			t.Fatalf("container %s lacks label %s", ctr.Name, l)
		}
	}
	if !strings.HasPrefix(ctr.Name, in.Service[:6]+"_shop_prod_web") {
		t.Fatalf("container name %s", ctr.Name)
	}

	// Update with zero downtime: a bounded request loop sees no failure.
	var ok, failed, sawV2 atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := edgeGet(n, "web.example.test", "/")
				switch {
				case err != nil || code != 200:
					failed.Add(1)
				default:
					ok.Add(1)
					if strings.Contains(body, "v2") {
						sawV2.Add(1)
					}
				}
			}
		}()
	}
	d := c.deploy(webSpec(v2))
	waitFor(t, 10*time.Second, "responses from v2", func() bool { return sawV2.Load() > 10 })
	close(stop)
	wg.Wait()
	if d.Status != raftfsm.DeploySucceeded || failed.Load() != 0 {
		t.Fatalf("update %s (%s): %d ok, %d failed requests during the switch", d.Status, d.Reason, ok.Load(), failed.Load())
	}
	t.Logf("zero-downtime update: %d requests, none failed", ok.Load())

	// A new generation that never becomes healthy is rolled back; the old one keeps serving.
	bad := webSpec(v2)
	bad.Command = []string{"once"}
	bad.Vars = map[string]string{"EXIT_CODE": "1"}
	if d := c.deploy(bad); d.Status != raftfsm.DeployFailed || !strings.Contains(d.Reason, "exited") {
		t.Fatalf("bad deploy: %s %q", d.Status, d.Reason)
	}
	if code, body, _ := edgeGet(n, "web.example.test", "/"); code != 200 || !strings.Contains(body, "v2") {
		t.Fatalf("after the rollback: %d %q", code, body)
	}

	// Undeploy: no container left, the host answers 404.
	if err := n.agent.Undeploy(context.Background(), "shop/prod/web", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the containers to go", func() bool {
		list, err := rt.List(context.Background(), map[string]string{runtime.LabelInstance: in.ID})
		return err == nil && len(list) == 0
	})
	waitFor(t, 10*time.Second, "the route to go", func() bool {
		code, _, _ := edgeGet(n, "web.example.test", "/")
		return code == 404
	})
}

func firstKey(s *raftfsm.State) string {
	keys := raftfsm.SortedKeys(s.Services)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func TestCronRunsOnScheduleAndRecordsExitCodes(t *testing.T) {
	c, rt := runtimeCluster(t)
	img := runtime.BuildTestImage(t, rt, "cron", map[string]string{"EXIT_CODE": "3"})
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "report", Kind: raftfsm.KindCron, Image: img,
		Command: []string{"once"}, Schedule: "@every 1s"}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("cron deploy: %s %s", d.Status, d.Reason)
	}
	n := c.nodes[0]
	c.waitState(n, 30*time.Second, "two recorded runs and an unhealthy verdict", func(s *raftfsm.State) bool {
		for _, in := range s.Instances {
			if in.Runs >= 2 && in.LastRunExit == 3 && in.Health == raftfsm.HealthUnhealthy && strings.Contains(in.HealthReason, "3") {
				return true
			}
		}
		return false
	})
}

func TestStatefulAddressIsInjected(t *testing.T) {
	c, rt := runtimeCluster(t)
	img := runtime.BuildTestImage(t, rt, "kv", nil)
	cache := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "cache", Kind: raftfsm.KindStateful, Image: img, Port: 6379}
	if d := c.deploy(cache); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("stateful deploy: %s %s", d.Status, d.Reason)
	}
	web := webSpec(img)
	web.Uses = []string{"cache"}
	if d := c.deploy(web); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("web deploy: %s %s", d.Status, d.Reason)
	}
	n := c.nodes[0]
	var webContainer string
	n.agent.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if strings.HasSuffix(in.Service, "/web") {
				webContainer = in.Container
			}
		}
	})
	env := containerEnv(t, webContainer)
	want := "REDIS_URL=redis://" + n.cfg.AdvertiseIP + ":6379"
	if !contains(env, want) || !contains(env, "CACHE_HOST="+n.cfg.AdvertiseIP) {
		t.Fatalf("web's environment %v lacks %s", env, want)
	}
	// Stateful services are published on the private address only.
	cacheCtr, _ := rt.Inspect(context.Background(), strings.Replace(webContainer, "_web", "_cache", 1))
	if cacheCtr.HostIP != n.cfg.AdvertiseIP || cacheCtr.HostPort != 6379 {
		t.Fatalf("stateful published on %s:%d", cacheCtr.HostIP, cacheCtr.HostPort)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestOrphanContainersAreRemoved(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtime.BuildTestImage(t, rt, "orphan", nil)
	labels := n.agent.ownLabels(map[string]string{runtime.LabelInstance: "ghost/x/y/z#0"})
	// A container of another cluster's node-1 on the same engine is not ours to touch.
	foreign := n.agent.ownLabels(map[string]string{runtime.LabelInstance: "ghost/x/y/z#0", labelCluster: "another-cluster"})
	other, err := rt.CreateAndStart(context.Background(), runtime.ContainerSpec{Name: "foreign" + n.cfg.ContainerSuffix, Image: img, Labels: foreign})
	if err != nil {
		t.Fatal(err)
	}
	runtime.RemoveOnCleanup(t, rt, other.ID)
	ctr, err := rt.CreateAndStart(context.Background(), runtime.ContainerSpec{Name: "orphan" + n.cfg.ContainerSuffix, Image: img, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	n.agent.kickReconciler()
	waitFor(t, 30*time.Second, "the orphan to be removed", func() bool {
		_, err := rt.Inspect(context.Background(), ctr.ID)
		return err != nil
	})
	if _, err := rt.Inspect(context.Background(), other.ID); err != nil {
		t.Fatalf("another cluster's container was removed: %v", err)
	}
}

func TestAgentRestartedMidDeployResumes(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtime.BuildTestImage(t, rt, "resume", nil)
	spec := webSpec(img)
	spec.Health.StartChecks = 20 // about two seconds of checks: time to crash mid-way
	res, err := n.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	c.waitState(n, 60*time.Second, "the deploy to reach its health checks", func(s *raftfsm.State) bool {
		for _, in := range s.Instances {
			if isCheckingPhase(in.Phase) {
				return true
			}
		}
		return false
	})
	c.stop(n, true)
	c.start(n)
	c.waitState(n, 90*time.Second, "the resumed deploy to succeed", func(s *raftfsm.State) bool {
		p, ok := control.DeployProgressOf(s, res.DeployID)
		return ok && p.Done && p.Deploy.Status == raftfsm.DeploySucceeded
	})
	if code, _, err := edgeGet(n, "web.example.test", "/"); err != nil || code != 200 {
		t.Fatalf("after the resumed deploy: %d %v", code, err)
	}
}
