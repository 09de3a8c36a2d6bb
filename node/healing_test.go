package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// containerEnv reads a container's environment from Docker.
func containerEnv(t testing.TB, name string) []string {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	info, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.Env
}

// instanceOf returns the one instance of service name (project/env/service) on node n.
func instanceOf(n *testNode, service string) raftfsm.Instance {
	var out raftfsm.Instance
	n.agent.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if strings.HasSuffix(in.Service, "/"+service) {
				out = *in
			}
		}
	})
	return out
}

func post(t testing.TB, url string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestFailingHealthIsRestartedAfterThreeChecks(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtime.BuildTestImage(t, rt, "heal", nil)
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/web")
	c.waitState(n, 10*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })

	post(t, "http://"+in.Address+"/admin/health?fail=1")
	c.waitState(n, 30*time.Second, "the restart", func(s *raftfsm.State) bool { return s.Instances[in.ID].Restarts == 1 })
	var restart raftfsm.Event
	n.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Items {
			if e.Kind == raftfsm.EventHealRestart && e.Instance == in.ID {
				restart = e
			}
		}
	})
	if !strings.Contains(restart.Message, "3 checks in a row unhealthy") {
		t.Fatalf("restart event %q: want it after exactly 3 unhealthy checks", restart.Message)
	}
	// The sample app keeps its state in memory: restarted, it is healthy again.
	c.waitState(n, 30*time.Second, "healthy again after the restart", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Health == raftfsm.HealthHealthy && in.RestartNonceSeen == in.RestartNonce
	})
}

func TestErrorLineMakesItDegraded(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtime.BuildTestImage(t, rt, "degraded", nil)
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/web")
	c.waitState(n, 10*time.Second, "a healthy check", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthHealthy })
	post(t, "http://"+in.Address+"/admin/log?level=error&msg=database+unreachable")
	c.waitState(n, 10*time.Second, "degraded", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Health == raftfsm.HealthDegraded && strings.Contains(in.HealthReason, "database unreachable")
	})
	// Only new lines count: the next check is healthy again.
	c.waitState(n, 10*time.Second, "healthy once the error line is old", func(s *raftfsm.State) bool {
		return s.Instances[in.ID].Health == raftfsm.HealthHealthy
	})
}

func TestWorkerThatExitsIsRestarted(t *testing.T) {
	c, rt := runtimeCluster(t)
	n := c.nodes[0]
	img := runtime.BuildTestImage(t, rt, "worker", nil)
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "jobs", Kind: raftfsm.KindWorker, Image: img}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s %s", d.Status, d.Reason)
	}
	in := instanceOf(n, "prod/jobs")
	if err := rt.Stop(context.Background(), in.ContainerID, time.Second); err != nil {
		t.Fatal(err)
	}
	c.waitState(n, 15*time.Second, "unhealthy", func(s *raftfsm.State) bool { return s.Instances[in.ID].Health == raftfsm.HealthUnhealthy })
	c.waitState(n, 30*time.Second, "restarted and running", func(s *raftfsm.State) bool {
		in := s.Instances[in.ID]
		return in.Restarts >= 1 && in.Health == raftfsm.HealthHealthy
	})
	ctr, err := rt.Inspect(context.Background(), in.ContainerID)
	if err != nil || !ctr.Running {
		t.Fatalf("worker container after healing: running=%v err=%v", ctr.Running, err)
	}
}
