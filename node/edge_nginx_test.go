//go:build linux

package node

// Agents whose edge is a real nginx master (cfg.Edge = "nginx"), routing to
// real containers of the test app: the agent-level counterpart of the edge
// package's suite, which runs nginx against httptest backends. Linux only:
// the tests make this process a child subreaper and read /proc to prove
// that no nginx process outlives them.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// nginxCluster starts n agents with Docker and an nginx edge each: the
// agent runs its own master in DataDir/nginx on its loopback address and
// EdgePort, with no TLS listener. It skips when nginx is not installed.
// Cleanup stops every master the test's agents started (an agent's Close
// leaves its master serving) and fails the test if any nginx process of
// the test is left.
func nginxCluster(t *testing.T, n int) (*testCluster, *runtime.Runtime) {
	t.Helper()
	testkit.RequireTool(t, "nginx") // these tests drive the agent's real nginx master
	if _, ok := edge.NginxPath(); !ok {
		t.Fatal("nginx is installed but edge.NginxPath does not find it")
	}
	// The masters daemonize: as a subreaper this process adopts them
	// (instead of an init that may never reap them) and edge's Stop reaps
	// them, so not even a zombie is left.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	rt := runtimetest.NewTestRuntime(t)
	// Every t.TempDir of this test, startCluster's too, is under root.
	// Registered before startCluster, this cleanup runs after its agents
	// have stopped, even if startCluster fails half-way.
	root := filepath.Dir(t.TempDir())
	t.Cleanup(func() { stopTestNginx(t, root) })
	c := startCluster(t, n, func(i int, cfg *Config) {
		cfg.NoRuntime = false
		cfg.Edge = "nginx"
		cfg.EdgeTLSPort = 0 // no TLS listener: nothing to collide with other tests' ports
	})
	t.Cleanup(func() { removeClusterContainers(t, rt, c) })
	for _, tn := range c.nodes {
		nginxOf(t, tn)
	}
	return c, rt
}

// nginxOf is node n's nginx edge.
func nginxOf(t testing.TB, n *testNode) *edge.Nginx {
	t.Helper()
	ng, ok := n.agent.edge.(*edge.Nginx)
	if !ok {
		t.Fatalf("%s's edge is %T, want *edge.Nginx", n.cfg.NodeID, n.agent.edge)
	}
	return ng
}

// nginxProcs lists the nginx processes of the masters under root, with
// their command lines: a process whose command line (a master's names its
// prefix directory) or open files (a worker's logs) are under root, and an
// nginx zombie this process (their subreaper) has not reaped yet, which
// still outlives its test. Orphaned workers are found by their files.
func nginxProcs(root string) map[int]string {
	ents, _ := os.ReadDir("/proc")
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		if comm, _ := os.ReadFile(filepath.Join(dir, "comm")); strings.TrimSpace(string(comm)) != "nginx" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) S ppid ...".
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); f[0] == "Z" {
			if ppid == os.Getpid() {
				out[pid] = "(zombie) nginx"
			}
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		title := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		ours := strings.Contains(title, root+"/")
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join(dir, "fd", fd.Name())); strings.HasPrefix(target, root+"/") {
				ours = true
				break
			}
		}
		if ours {
			out[pid] = title
		}
	}
	return out
}

// stopTestNginx stops the nginx master of every node dir under root as
// local mode's StopEdges does, then fails the test if any nginx process of
// root is left, and kills and reaps those so none leaks into later tests.
func stopTestNginx(t testing.TB, root string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "node-*", "nginx"))
	for _, d := range dirs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := edge.StopNginxDir(ctx, d); err != nil {
			t.Errorf("stop the nginx master of %s: %v", d, err)
		}
		cancel()
	}
	if left := waitNginxGone(root, 10*time.Second, false); len(left) > 0 {
		t.Errorf("nginx processes outlived the test's edges: %v", left)
		if left := waitNginxGone(root, 10*time.Second, true); len(left) > 0 {
			t.Errorf("nginx processes survive SIGKILL: %v", left)
		}
	}
}

// waitNginxGone waits until nginxProcs(root) is empty, reaping the nginx
// processes that are this process's children (its subreaper adopts the
// daemonized masters, and orphaned workers), killing every one found
// first when kill is set (a master killed before its workers may fork new
// ones, so it keeps looking). It returns what is left at the deadline.
func waitNginxGone(root string, timeout time.Duration, kill bool) map[int]string {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// Poll /proc: a process that is not our child gives nothing to wait on.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left := nginxProcs(root)
		for pid := range left {
			if kill {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-deadline.C:
			return nginxProcs(root)
		case <-tick.C:
		}
	}
}

// edgeLoad is a bounded request loop against one host of a node's edge:
// every answer must be 200 and contain one of the accepted bodies.
type edgeLoad struct {
	ok, failed atomic.Int64
	sawNewest  atomic.Int64 // answers containing the last accepted body
	first      atomic.Value // the first failure, for the report
	cutShort   atomic.Bool  // a worker hit the loop's bound
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// startEdgeLoad runs workers concurrent requests for host through n's edge
// until end (or halt) or bound.
func startEdgeLoad(n *testNode, host string, workers int, bound time.Duration, accept ...string) *edgeLoad {
	l := &edgeLoad{stop: make(chan struct{})}
	deadline := time.Now().Add(bound)
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					l.cutShort.Store(true)
					return
				}
				code, body, err := edgeGet(n, host, "/")
				good := err == nil && code == http.StatusOK
				if good {
					good = false
					for _, a := range accept {
						good = good || strings.Contains(body, a)
					}
				}
				if !good {
					if l.failed.Add(1) == 1 {
						l.first.Store(fmt.Sprintf("at %s: %d %q %v", time.Now().Format("15:04:05.000"), code, body, err))
					}
					continue
				}
				l.ok.Add(1)
				if strings.Contains(body, accept[len(accept)-1]) {
					l.sawNewest.Add(1)
				}
			}
		}()
	}
	return l
}

// halt stops the workers and waits for them (also from a t.Cleanup, for
// a test that fails before end).
func (l *edgeLoad) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// total is the number of answers so far.
func (l *edgeLoad) total() int64 { return l.ok.Load() + l.failed.Load() }

// end stops the loop and fails the test if any request failed or the loop
// hit its bound before the test stopped it.
func (l *edgeLoad) end(t testing.TB, what string) {
	t.Helper()
	l.halt()
	if l.cutShort.Load() {
		t.Errorf("%s: the request loop hit its bound before the test ended it", what)
	}
	if l.failed.Load() != 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d ok, %d failed requests (the first %v)", what, l.ok.Load(), l.failed.Load(), l.first.Load())
	}
}

// waitMoreRequests waits until the loop has answered n more requests.
func (l *edgeLoad) waitMoreRequests(t testing.TB, n int64) {
	t.Helper()
	from := l.total()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d more requests through the edge", n), func() bool { return l.total() >= from+n })
}

// edgeEvents are the messages of the edge events about node n.
func edgeEvents(n *testNode) []string {
	var out []string
	n.agent.View(func(s *raftfsm.State) {
		for _, e := range s.Events.Items {
			if e.Kind == raftfsm.EventEdge && e.Node == n.cfg.NodeID {
				out = append(out, e.Message)
			}
		}
	})
	return out
}

// fileNames reports whether the file at path contains s.
func fileNames(t testing.TB, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.Contains(string(b), s)
}

// serviceKeyOf is the state key ("ws/project/env/service") of the service
// named name, as n sees it.
func (c *testCluster) serviceKeyOf(n *testNode, name string) string {
	c.t.Helper()
	key := ""
	n.agent.View(func(s *raftfsm.State) {
		for k := range s.Services {
			if strings.HasSuffix(k, "/"+name) {
				key = k
			}
		}
	})
	if key == "" {
		c.t.Fatalf("no service %s in the state", name)
	}
	return key
}

// TestNginxEdgeDeployUpdateUndeploy: with the agent's own nginx, a deploy
// is reached by its Host header, an update switches with no failed request
// through the old container's removal, and an undeploy answers 404 and
// leaves no trace of the host in the live config.
func TestNginxEdgeDeployUpdateUndeploy(t *testing.T) {
	c, rt := nginxCluster(t, 1)
	n := c.nodes[0]
	ng := nginxOf(t, n)
	const host = "web.example.test"
	v1 := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	v2 := runtimetest.BuildTestImage(t, rt, "v2", map[string]string{"VERSION": "v2"})

	// Before any deploy, nginx answers every host with 404.
	if code, _, err := edgeGet(n, host, "/"); err != nil || code != http.StatusNotFound {
		t.Fatalf("before the deploy: %d %v, want 404 from nginx", code, err)
	}
	if d := c.deploy(webSpec(v1)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy v1: %s %s", d.Status, d.Reason)
	}
	code, body, err := edgeGet(n, host, "/")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "v1") {
		t.Fatalf("GET %s through nginx: %d %q %v, want 200 from v1", host, code, body, err)
	}
	if code, _, err := edgeGet(n, "other.example.test", "/"); err != nil || code != http.StatusNotFound {
		t.Fatalf("an unknown host: %d %v, want 404", code, err)
	}
	key := c.serviceKeyOf(n, "web")
	if !fileNames(t, ng.ConfigPath(), "\n    "+host+" ") {
		t.Fatalf("%s does not route %s after the deploy", ng.ConfigPath(), host)
	}
	// The request went through nginx: its access log has it, with the service.
	accessLog := filepath.Join(ng.Dir(), "logs", "access.log")
	waitFor(t, 5*time.Second, "the request in the access log", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), "host="+host+" service="+key)
	})
	var old raftfsm.Instance
	n.agent.View(func(s *raftfsm.State) { old = *s.ServiceInstances(key)[0] })
	master := ng.Pid()
	// nginx reaches the container on its Docker network, not through the
	// published port (Docker's userland proxy on a loopback address).
	if info, err := rt.Inspect(context.Background(), old.ContainerID); err != nil || info.IP == "" {
		t.Fatalf("inspect the container: %+v %v", info, err)
	} else if direct := net.JoinHostPort(info.IP, strconv.Itoa(info.Port)); !fileNames(t, ng.ConfigPath(), "server "+direct+" ") {
		t.Fatalf("%s does not send %s to the container's network address %s (the published one is %s)", ng.ConfigPath(), host, direct, old.Address)
	}

	// Update under load: from before the switch until after the old
	// container is gone (drained, stopped, removed), no request fails.
	load := startEdgeLoad(n, host, 4, 2*time.Minute, "v1", "v2")
	t.Cleanup(load.halt)
	load.waitMoreRequests(t, 20)
	if d := c.deploy(webSpec(v2)); d.Status != raftfsm.DeploySucceeded {
		load.end(t, "update")
		t.Fatalf("deploy v2: %s %s", d.Status, d.Reason)
	}
	waitFor(t, 30*time.Second, "the old generation's container to be removed", func() bool {
		_, err := rt.Inspect(context.Background(), old.ContainerID)
		return errors.Is(err, runtime.ErrContainerNotFound)
	})
	load.waitMoreRequests(t, 20)
	load.end(t, "update v1 -> v2 through nginx")
	if load.sawNewest.Load() == 0 {
		t.Fatal("no request reached v2")
	}
	if code, body, err := edgeGet(n, host, "/"); err != nil || code != http.StatusOK || !strings.Contains(body, "v2") {
		t.Fatalf("after the update: %d %q %v, want v2", code, body, err)
	}
	if ng.Pid() != master {
		t.Fatalf("the update restarted nginx (master %d, now %d): it must reload", master, ng.Pid())
	}
	t.Logf("update through nginx: %d requests (%d from v2), none failed", load.ok.Load(), load.sawNewest.Load())

	// Undeploy: 404 for the host, and the live config no longer names it.
	if err := n.agent.Undeploy(context.Background(), "shop/prod/web", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the host to answer 404", func() bool {
		code, _, _ := edgeGet(n, host, "/")
		return code == http.StatusNotFound
	})
	waitFor(t, 30*time.Second, "the service's containers to go", func() bool {
		list, err := rt.List(context.Background(), n.agent.ownLabels(map[string]string{runtime.LabelInstance: old.ID}))
		return err == nil && len(list) == 0
	})
	if fileNames(t, ng.ConfigPath(), host) {
		b, _ := os.ReadFile(ng.ConfigPath())
		t.Fatalf("%s still names %s after the undeploy:\n%s", ng.ConfigPath(), host, b)
	}
}

// TestNginxEdgeRejectedConfigRollsBack: when nginx refuses the routes a
// deploy needs (here the edge's access log cannot be opened again: a
// directory stands where the file goes, as a broken disk or a stray
// mkdir would leave it), the deploy fails saying why, the live config and
// master are untouched, the refusal is an event, and the service already
// deployed serves every request meanwhile. Once the obstacle is gone, the
// same deploy succeeds.
func TestNginxEdgeRejectedConfigRollsBack(t *testing.T) {
	c, rt := nginxCluster(t, 1)
	n := c.nodes[0]
	ng := nginxOf(t, n)
	img := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	if d := c.deploy(webSpec(img)); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy web: %s %s", d.Status, d.Reason)
	}
	api := webSpec(img)
	api.Service, api.Hosts = "api", []string{"api.example.test"}
	// The master keeps the open log file; a reload must open the path again.
	blocker := filepath.Join(ng.Dir(), "logs", "access.log")
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	liveBefore, err := os.ReadFile(ng.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	master := ng.Pid()

	load := startEdgeLoad(n, "web.example.test", 2, 2*time.Minute, "v1")
	t.Cleanup(load.halt)
	load.waitMoreRequests(t, 10)
	d := c.deploy(api)
	// The refused generation leaves no container (the worker removes its
	// candidate and does not try a failed generation again).
	waitFor(t, 30*time.Second, "no container of the refused generation", func() bool {
		list, err := rt.List(context.Background(), n.agent.ownLabels(map[string]string{runtime.LabelService: "api"}))
		return err == nil && len(list) == 0
	})
	load.waitMoreRequests(t, 10)
	load.end(t, "web while nginx refused api's routes")
	if d.Status != raftfsm.DeployFailed || !strings.Contains(d.Reason, "edge") || !strings.Contains(d.Reason, "Is a directory") {
		t.Fatalf("deploy api with its access log blocked: %s %q, want failed with nginx's reason", d.Status, d.Reason)
	}
	if code, _, err := edgeGet(n, "api.example.test", "/"); err != nil || code != http.StatusNotFound {
		t.Fatalf("the refused host: %d %v, want 404", code, err)
	}
	live, err := os.ReadFile(ng.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(live) != string(liveBefore) {
		t.Fatalf("the refused config changed the live one:\nbefore:\n%s\nafter:\n%s", liveBefore, live)
	}
	if ng.Pid() != master {
		t.Fatalf("the refused config restarted nginx (master %d, now %d)", master, ng.Pid())
	}
	if ev := edgeEvents(n); !slices.ContainsFunc(ev, func(m string) bool { return strings.Contains(m, "Is a directory") }) {
		t.Fatalf("edge events %q: want one saying nginx refused the routes", ev)
	}

	// The obstacle gone, the same spec deploys and is routed.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if d := c.deploy(api); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy api again: %s %s", d.Status, d.Reason)
	}
	if code, body, err := edgeGet(n, "api.example.test", "/"); err != nil || code != http.StatusOK || !strings.Contains(body, "v1") {
		t.Fatalf("api after the retry: %d %q %v", code, body, err)
	}
	if code, _, err := edgeGet(n, "web.example.test", "/"); err != nil || code != http.StatusOK {
		t.Fatalf("web after the retry: %d %v", code, err)
	}
}

// TestNginxEdgeTwoNodesUndeployAndShutdown: a service on two agents is
// routed by each one's nginx; undeploying it removes its server block from
// both; stopping the agents leaves both masters serving (an agent restart
// must not drop traffic) until they are stopped, after which no nginx
// process is left.
func TestNginxEdgeTwoNodesUndeployAndShutdown(t *testing.T) {
	c, rt := nginxCluster(t, 2)
	const host = "web.example.test"
	img := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": "v1"})
	spec := webSpec(img)
	spec.Replicas = 2
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy on two nodes: %s %s", d.Status, d.Reason)
	}
	for _, n := range c.nodes {
		if code, body, err := edgeGet(n, host, "/"); err != nil || code != http.StatusOK || !strings.Contains(body, "v1") {
			t.Fatalf("%s's nginx: %d %q %v, want 200 from v1", n.cfg.NodeID, code, body, err)
		}
		if !fileNames(t, nginxOf(t, n).ConfigPath(), "\n    "+host+" ") {
			t.Fatalf("%s's nginx config does not route %s", n.cfg.NodeID, host)
		}
	}

	if err := c.leader().agent.Undeploy(context.Background(), "shop/prod/web", "test"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, n.cfg.NodeID+"'s nginx to answer 404", func() bool {
			code, _, _ := edgeGet(n, host, "/")
			return code == http.StatusNotFound
		})
		if ng := nginxOf(t, n); fileNames(t, ng.ConfigPath(), host) {
			b, _ := os.ReadFile(ng.ConfigPath())
			t.Fatalf("%s's nginx config still names %s (edge events: %v):\n%s", n.cfg.NodeID, host, edgeEvents(n), b)
		}
	}

	// The agents stop; their masters keep serving (404 for the undeployed host).
	masters := map[*testNode]int{}
	for _, n := range c.nodes {
		masters[n] = nginxOf(t, n).Pid()
	}
	c.stopAll()
	root := filepath.Dir(filepath.Dir(c.nodes[0].cfg.DataDir))
	running := nginxProcs(root)
	for n, pid := range masters {
		if title, ok := running[pid]; !ok || !strings.Contains(title, "nginx: master process") {
			t.Fatalf("%s's nginx master %d did not outlive its agent (nginx processes: %v)", n.cfg.NodeID, pid, running)
		}
		if code, _, err := edgeGet(n, host, "/"); err != nil || code != http.StatusNotFound {
			t.Fatalf("%s's nginx after its agent stopped: %d %v, want it serving 404", n.cfg.NodeID, code, err)
		}
	}

	// The end of the masters: none of the test's nginx processes is left.
	stopTestNginx(t, root)
	if left := nginxProcs(root); len(left) != 0 {
		t.Fatalf("nginx processes left after stopping the edges: %v", left)
	}
	for n := range masters {
		if _, _, err := edgeGet(n, host, "/"); err == nil {
			t.Fatalf("%s's edge port still answers after its master stopped", n.cfg.NodeID)
		}
	}
}
