package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// BenchmarkServiceNames measures, on a 2-node mesh with Docker, in one
// run and from inside containers (the test app's tools, run with Docker
// exec): name resolution ("web" asked of Docker's resolver, which asks
// this node's discovery server; p50 and p99 of N lookups), and an HTTP
// request on a new connection to web, whose one instance runs on node-1:
// directly to its container address from a container beside it on node-1,
// and through the cross-node path (node-2's forwarder, node-1's gateway)
// from a container on node-2. N is b.N; run with -benchtime=300x.
func BenchmarkServiceNames(b *testing.B) {
	rt := runtimetest.NewTestRuntime(b)
	img := standinImage(b, rt, "web", 8080)
	c := discoveryCluster(b, rt, 2)
	web := raftfsm.ServiceSpec{Project: "bench", Env: "prod", Service: "web", Kind: raftfsm.KindService, Image: img, Port: 8080,
		Replicas: 1, Nodes: []string{"node-1"}, Health: raftfsm.HealthSpec{Path: "/health"}}
	near := raftfsm.ServiceSpec{Project: "bench", Env: "prod", Service: "near", Kind: raftfsm.KindWorker, Image: img,
		Replicas: 1, Nodes: []string{"node-1"}}
	far := near
	far.Service, far.Nodes = "far", []string{"node-2"}
	c.deployAll("", []raftfsm.ServiceSpec{web, near, far})
	running := c.servingContainers(raftfsm.DefaultWorkspaceName, 3)
	webInfo, err := rt.Inspect(context.Background(), running["web"].id)
	if err != nil {
		b.Fatal(err)
	}
	n := fmt.Sprint(max(b.N, 20))
	tool := func(container string, args ...string) (p50, p99 float64) {
		b.Helper()
		res, err := rt.Exec(context.Background(), container, append([]string{"/testapp"}, args...))
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("%v in the container: %v %s", args, err, res.Output)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(res.Output), "p50_us %g p99_us %g", &p50, &p99); err != nil {
			b.Fatalf("%v output %q: %v", args, res.Output, err)
		}
		return p50 / 1000, p99 / 1000
	}
	// The far container's node follows the state asynchronously: wait
	// until the name answers there.
	waitFor(b, 15e9, "web by name from node-2", func() bool {
		res, err := rt.Exec(context.Background(), running["far"].id, []string{"/testapp", "probe", "web:8080"})
		return err == nil && res.ExitCode == 0
	})
	b.ResetTimer()
	rp50, rp99 := tool(running["far"].id, "resolve", "web", n)
	dp50, dp99 := tool(running["near"].id, "bench", net.JoinHostPort(webInfo.IP, "8080"), n)
	xp50, xp99 := tool(running["far"].id, "bench", "web:8080", n)
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rp50, "resolve-p50-ms")
	b.ReportMetric(rp99, "resolve-p99-ms")
	b.ReportMetric(dp50, "direct-p50-ms")
	b.ReportMetric(dp99, "direct-p99-ms")
	b.ReportMetric(xp50, "crossnode-p50-ms")
	b.ReportMetric(xp99, "crossnode-p99-ms")
	b.ReportMetric(xp50-dp50, "crossnode-added-p50-ms")
}
