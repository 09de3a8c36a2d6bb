package node

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// runtimeCluster is a one-node cluster with Docker and the built-in proxy edge.
func runtimeCluster(t *testing.T) (*testCluster, *runtime.Runtime) {
	t.Helper()
	return runtimeClusterWith(t, nil)
}

// runtimeClusterWith is runtimeCluster with the node's config changed by mut.
func runtimeClusterWith(t *testing.T, mut func(cfg *Config)) (*testCluster, *runtime.Runtime) {
	t.Helper()
	rt := runtimetest.NewTestRuntime(t)
	c := startCluster(t, 1, func(i int, cfg *Config) {
		cfg.NoRuntime = false
		if mut != nil {
			mut(cfg)
		}
	})
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
	v1 := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	v2 := runtimetest.BuildTestImage(t, rt, "v2", map[string]string{"VERSION": "v2"})

	// Deploy: healthy, routed, and named and labelled <ws>_<project>_<env>_<service> with the dropmesh.* labels.
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

	// Update with zero downtime: a request loop that runs from before the
	// switch until after the old container is gone (drained, stopped and
	// removed) sees no failure.
	var ok, failed, sawV2 atomic.Int64
	var cutShort atomic.Bool
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(120 * time.Second)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					cutShort.Store(true)
					return
				}
				code, body, err := edgeGet(n, "web.example.test", "/")
				switch {
				case err != nil || code != 200:
					if failed.Add(1) == 1 {
						firstFailure.Store(fmt.Sprintf("at %s: %d %q %v", time.Now().Format("15:04:05.000"), code, body, err))
					}
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
	waitFor(t, 30*time.Second, "the old generation's container to be removed", func() bool {
		_, err := rt.Inspect(context.Background(), ctr.ID)
		return errors.Is(err, runtime.ErrContainerNotFound)
	})
	afterOld := ok.Load() + failed.Load()
	waitFor(t, 10*time.Second, "requests after the old container went", func() bool { return ok.Load()+failed.Load() > afterOld+20 })
	close(stop)
	wg.Wait()
	if cutShort.Load() {
		t.Fatal("the request loop ended before the old generation was gone")
	}
	if d.Status != raftfsm.DeploySucceeded || failed.Load() != 0 || sawV2.Load() == 0 {
		t.Fatalf("update %s (%s): %d ok (%d from v2), %d failed requests during the switch (the first %v)", d.Status, d.Reason, ok.Load(), sawV2.Load(), failed.Load(), firstFailure.Load())
	}
	t.Logf("zero-downtime update: %d requests (%d from v2), none failed, through the old container's stop", ok.Load(), sawV2.Load())

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
	img := runtimetest.BuildTestImage(t, rt, "cron", map[string]string{"EXIT_CODE": "3"})
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
	img := runtimetest.BuildTestImage(t, rt, "kv", nil)
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
	img := runtimetest.BuildTestImage(t, rt, "orphan", nil)
	labels := n.agent.ownLabels(map[string]string{runtime.LabelInstance: "ghost/x/y/z#0"})
	// A container of another cluster's node-1 on the same engine is not ours to touch.
	foreign := n.agent.ownLabels(map[string]string{runtime.LabelInstance: "ghost/x/y/z#0", labelCluster: "another-cluster"})
	other, err := rt.CreateAndStart(context.Background(), runtime.ContainerSpec{Name: "foreign" + n.cfg.ContainerSuffix, Image: img, Labels: foreign})
	if err != nil {
		t.Fatal(err)
	}
	runtimetest.RemoveOnCleanup(t, rt, other.ID)
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

// TestAgentRestartedMidDeployResumes crashes the agent while two first
// deploys are in their health checks: one that passes them, one that never
// will. After the restart each candidate goes through its gate again: the
// first succeeds, the second fails and never serves.
func TestAgentRestartedMidDeployResumes(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "resume", nil)
	spec := webSpec(img)
	spec.Health.StartChecks = 20 // about two seconds of checks: time to crash mid-way
	res, err := n.agent.Deploy(context.Background(), control.DeployRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	bad := webSpec(img)
	bad.Service, bad.Hosts = "api", []string{"api.example.test"}
	// The app listens on another port than the one published: the
	// container runs, its health checks never pass.
	bad.Vars = map[string]string{"PORT": "9090"}
	bad.Health.StartTimeout = raftfsm.Duration(6 * time.Second)
	badRes, err := n.agent.Deploy(context.Background(), control.DeployRequest{Spec: bad})
	if err != nil {
		t.Fatal(err)
	}
	var badInstance string
	waitFor(t, 60*time.Second, "both deploys to be in their health checks", func() bool {
		checking := false
		n.agent.View(func(s *raftfsm.State) {
			for _, in := range s.Instances {
				switch {
				case strings.HasSuffix(in.Service, "/api"):
					badInstance = in.ID
				case isCheckingPhase(in.Phase):
					checking = true
				}
			}
		})
		if !checking || badInstance == "" {
			return false
		}
		list, err := rt.List(context.Background(), map[string]string{runtime.LabelInstance: badInstance})
		return err == nil && len(list) == 1 && candidateSuffix.MatchString(list[0].Name) && list[0].Running
	})
	c.stop(n, true)
	c.start(n)
	c.waitState(n, 90*time.Second, "the resumed deploys to finish", func(s *raftfsm.State) bool {
		p, ok := control.DeployProgressOf(s, res.DeployID)
		bp, bok := control.DeployProgressOf(s, badRes.DeployID)
		return ok && p.Done && bok && bp.Done
	})
	n.agent.View(func(s *raftfsm.State) {
		if p, _ := control.DeployProgressOf(s, res.DeployID); p.Deploy.Status != raftfsm.DeploySucceeded {
			t.Errorf("the healthy deploy: %s (%s)", p.Deploy.Status, p.Deploy.Reason)
		}
		if p, _ := control.DeployProgressOf(s, badRes.DeployID); p.Deploy.Status != raftfsm.DeployFailed || !strings.Contains(p.Deploy.Reason, "health") {
			t.Errorf("the deploy that never passes its health checks: %s (%s)", p.Deploy.Status, p.Deploy.Reason)
		}
		if in := s.Instances[badInstance]; in != nil && in.Phase == raftfsm.PhaseReady {
			t.Errorf("the never-healthy instance is ready: %+v", in)
		}
	})
	if code, _, err := edgeGet(n, "web.example.test", "/"); err != nil || code != 200 {
		t.Fatalf("after the resumed deploy: %d %v", code, err)
	}
	if code, _, err := edgeGet(n, "api.example.test", "/"); err != nil || code != 404 {
		t.Fatalf("the never-healthy service is routed: %d %v", code, err)
	}
}

// TestCronStopsWithItsAgent: a stopped agent's cron jobs start no further
// run, and the restarted agent runs one job per instance.
func TestCronStopsWithItsAgent(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "cron", nil)
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "tick", Kind: raftfsm.KindCron, Image: img,
		Command: []string{"once"}, Schedule: "@every 1s"}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("cron deploy: %s %s", d.Status, d.Reason)
	}
	var id string
	runsOn := func(a *Agent) int {
		r := 0
		a.View(func(s *raftfsm.State) {
			for _, in := range s.Instances {
				if strings.HasSuffix(in.Service, "/tick") {
					id, r = in.ID, in.Runs
				}
			}
		})
		return r
	}
	runs := func() int { return runsOn(n.agent) }
	waitFor(t, 30*time.Second, "two cron runs", func() bool { return runs() >= 2 })

	old := n.agent
	c.stop(n, false)
	if j := old.crons.running(); j != 0 {
		t.Fatalf("the stopped agent still has %d cron jobs", j)
	}
	// Whatever the stopped agent would start now, Docker would see: watch
	// the instance's containers for three schedule periods. (Absence has
	// to be watched for a while; nothing else ends this wait.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, errs := rt.Events(ctx, map[string]string{runtime.LabelInstance: id})
	window := time.NewTimer(3 * time.Second)
	defer window.Stop()
watch:
	for {
		select {
		case ev := <-events:
			if ev.Action == "start" {
				t.Fatalf("a cron run started after its agent stopped: %s", ev.Name)
			}
		case err := <-errs:
			t.Fatalf("docker events: %v", err)
		case <-window.C:
			break watch
		}
	}

	before := runsOn(old) // the stopped agent's last view
	c.start(n)
	waitFor(t, 30*time.Second, "runs of the restarted agent", func() bool { return runs() >= before+2 })
	if j := n.agent.crons.running(); j != 1 {
		t.Fatalf("the restarted agent runs %d jobs for one cron instance", j)
	}
	// Never two runs at once: every start is preceded by the previous run's end.
	var live int
	starts := 0
	for starts < 2 {
		select {
		case ev := <-events:
			switch ev.Action {
			case "start":
				starts++
				if live++; live > 1 {
					t.Fatalf("two runs at once (%s)", ev.Name)
				}
			case "die":
				live = max(0, live-1)
			}
		case err := <-errs:
			t.Fatalf("docker events: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no cron runs after the restart")
		}
	}
}

// TestExitedContainerIsNotRouted: the edge stops routing to a container
// that exited and routes to it again once it runs; its image is reported as
// the registry's digest throughout.
func TestExitedContainerIsNotRouted(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	local := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	remote := runtimetest.StartRegistry(t) + "/shop/web:1"
	runtimetest.PushImage(t, rt, local, remote)
	pushed, err := rt.InspectImage(context.Background(), remote)
	if err != nil || pushed.Digest == "" || pushed.Digest == pushed.ID {
		t.Fatalf("pushed image %+v, %v", pushed, err)
	}
	if d := c.deploy(webSpec(remote)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	instance := func() (in raftfsm.Instance) {
		n.agent.View(func(s *raftfsm.State) { in = *s.ServiceInstances(s.Services[firstKey(s)].Key)[0] })
		return in
	}
	if in := instance(); in.ImageDigest != pushed.Digest {
		t.Fatalf("deployed: image digest %q, want the registry's %q", in.ImageDigest, pushed.Digest)
	}
	if code, _, err := edgeGet(n, "web.example.test", "/"); err != nil || code != 200 {
		t.Fatalf("through the edge: %d %v", code, err)
	}
	ctrID := instance().ContainerID
	if err := rt.Stop(context.Background(), ctrID, time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the exited container to be reported", func() bool {
		in := instance()
		return in.State == "exited" && in.Address == ""
	})
	waitFor(t, 10*time.Second, "the edge to stop routing to it", func() bool {
		code, _, _ := edgeGet(n, "web.example.test", "/")
		return code == 404
	})
	for _, r := range n.agent.edgeConfig().Routes {
		t.Fatalf("the edge still routes %s to %v", r.Host, r.Upstreams)
	}
	if in := instance(); in.ImageDigest != pushed.Digest {
		t.Fatalf("exited: image digest %q, want the registry's %q", in.ImageDigest, pushed.Digest)
	}
	if err := rt.Start(context.Background(), ctrID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the edge to route to it again", func() bool {
		code, body, _ := edgeGet(n, "web.example.test", "/")
		return code == 200 && strings.Contains(body, "v1")
	})
	waitFor(t, 10*time.Second, "the running container to be reported", func() bool { return instance().State == "running" })
	if in := instance(); in.ImageDigest != pushed.Digest {
		t.Fatalf("running again: image digest %q, want the registry's %q", in.ImageDigest, pushed.Digest)
	}
}

// TestStatefulIsNeverPublishedOnThePublicIP: an agent told to publish on
// its public address refuses a stateful service, says why, and starts
// nothing for it.
func TestStatefulIsNeverPublishedOnThePublicIP(t *testing.T) {
	c, rt := runtimeClusterWith(t, func(cfg *Config) {
		cfg.PublicIP = testIPPrefix + "90" // distinct from the private (advertise) address
		cfg.PublishIP = cfg.PublicIP
	})
	n := c.nodes[0]
	img := runtimetest.BuildTestImage(t, rt, "kv", nil)
	cache := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "cache", Kind: raftfsm.KindStateful, Image: img, Port: 6379}
	d := c.deploy(cache)
	if d.Status != raftfsm.DeployFailed || !strings.Contains(d.Reason, "private IP") {
		t.Fatalf("stateful deploy on the public IP: %s %q", d.Status, d.Reason)
	}
	list, err := rt.List(context.Background(), n.agent.ownLabels(map[string]string{runtime.LabelService: "cache"}))
	if err != nil || len(list) != 0 {
		t.Fatalf("containers of the refused service: %v %v", list, err)
	}
	found := false
	n.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Items {
			if e.Kind == raftfsm.EventDeployRefused && e.Deploy == d.ID && strings.Contains(e.Message, n.cfg.PublicIP) {
				found = true
			}
		}
	})
	if !found {
		t.Fatal("no event says why the stateful service was refused")
	}
}

// TestBuildImagePerDockerfile: a context is accepted without a root
// Dockerfile, each Dockerfile in it builds its own image, and a Dockerfile
// the context lacks is refused with a clear error.
func TestBuildImagePerDockerfile(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	ctx := context.Background()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range map[string]string{
		"a/Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nLABEL which=a\n",
		"b/Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nLABEL which=b\n",
		"hello.txt":    "hello " + runtimetest.RandomSuffix(),
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := n.agent.StoreContext(ctx, &b)
	if err != nil {
		t.Fatalf("a context whose Dockerfiles are in sub-directories: %v", err)
	}
	build := func(dockerfile string) (runtime.ImageInfo, error) {
		t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, buildTag(info.Digest, dockerfile)) })
		return n.agent.buildImage(ctx, desiredInstance{spec: raftfsm.ServiceSpec{Build: info.Digest, Dockerfile: dockerfile}}, nil)
	}
	a, err := build("a/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	bImg, err := build("b/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == bImg.ID {
		t.Fatalf("two Dockerfiles of one context built one image %s", a.ID)
	}
	if again, err := build("a/Dockerfile"); err != nil || again.ID != a.ID {
		t.Fatalf("rebuild of a/Dockerfile: %s, %v; want %s", again.ID, err, a.ID)
	}
	if _, err := build(""); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "no Dockerfile") {
		t.Fatalf("build without a root Dockerfile: %v", err)
	}
}

// TestOriginCertServedOverTLS: a zone's origin certificate, stored sealed in
// the state, makes the edge serve the zone's hosts on the TLS port; without
// it the TLS port refuses them.
func TestOriginCertServedOverTLS(t *testing.T) {
	c, rt := runtimeClusterWith(t, func(cfg *Config) { cfg.EdgeTLSPort = 18443 })
	n := c.nodes[0]
	ctx := context.Background()
	img := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	crt, err := os.ReadFile("edge/testdata/example.test.crt") // example.test and *.example.test
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("edge/testdata/example.test.key")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(crt)
	tlsGet := func() (int, string, error) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "web.example.test"}, DisableKeepAlives: true}}
		req, err := http.NewRequest("GET", fmt.Sprintf("https://%s:%d/", n.cfg.BindIP, n.cfg.EdgeTLSPort), nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = "web.example.test"
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if _, _, err := tlsGet(); err == nil {
		t.Fatal("TLS served without a certificate")
	}
	for name, in := range map[string][3]string{
		"another zone":  {"other.test", string(crt), string(key)},
		"key mismatch":  {"example.test", string(crt), "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"},
		"not a cert":    {"example.test", "hello", string(key)},
		"bad zone name": {"Example.Test;", string(crt), string(key)},
	} {
		if err := n.agent.PutOriginCert(ctx, in[0], in[1], in[2]); !errors.Is(err, raftfsm.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := n.agent.PutOriginCert(ctx, "example.test", string(crt), string(key)); err != nil {
		t.Fatal(err)
	}
	n.agent.View(func(s *raftfsm.State) {
		if len(s.OriginCerts) != 1 || strings.Contains(string(s.OriginCerts["example.test"].Key), "PRIVATE KEY") {
			t.Fatalf("origin certs in the state: %+v", s.OriginCerts)
		}
	})
	waitFor(t, 20*time.Second, "the host to be served over TLS", func() bool {
		code, body, _ := tlsGet()
		return code == 200 && strings.Contains(body, "v1")
	})
	if err := n.agent.DeleteOriginCert(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "TLS to stop", func() bool {
		_, _, err := tlsGet()
		return err != nil
	})
	if code, _, err := edgeGet(n, "web.example.test", "/"); err != nil || code != 200 {
		t.Fatalf("plain HTTP after the certificate went: %d %v", code, err)
	}
}
